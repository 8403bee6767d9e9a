// Starts GraphiQL with the settings the server wrote into the page (server/http/playground.py).
// A file rather than an inline script, so the page's Content-Security-Policy can forbid inline code.
(function () {
  'use strict';
  var config = JSON.parse(document.getElementById('graphiql-config').textContent);
  var props = {
    fetcher: GraphiQL.createFetcher({ url: config.endpoint }),
    // Headers stay out of localStorage: in demo mode they hold a key.
    shouldPersistHeaders: false,
  };
  if (config.headers) {
    var headers = JSON.stringify(config.headers, null, 2);
    props.headers = headers; // the first tab
    props.defaultHeaders = headers; // tabs opened later
    props.defaultEditorToolsVisibility = 'headers';
  }
  if (config.query) {
    props.defaultQuery = config.query;
  }
  ReactDOM.createRoot(document.getElementById('graphiql')).render(
    React.createElement(GraphiQL, props)
  );
})();
