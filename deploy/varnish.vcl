# Varnish in front of the content API: published reads cached, purged by surrogate key (xkey).
#
# The API decides what may be cached: `Cache-Control: public` only for published reads over GET
# by a published-only key, with `Vary: Accept, Authorization, X-Organization-Id`, so each key's
# answers are kept apart. Every other response is `private, no-store` and passes through.
# On each change the API sends `PURGE /` with the stale keys in `Surrogate-Key` (PURGE_URLS).
# Needs Debian's `varnish` and `varnish-modules` (for xkey). See docs/delivery.md.
vcl 4.1;

import xkey;

backend api {
    .host = "127.0.0.1";
    .port = "8000";
}

# Who may purge: the API's hosts.
acl purgers {
    "127.0.0.1";
    "::1";
}

sub vcl_recv {
    if (req.method == "PURGE") {
        if (client.ip !~ purgers) {
            return (synth(403, "Forbidden"));
        }
        if (!req.http.Surrogate-Key) {
            return (synth(400, "Surrogate-Key required"));
        }
        set req.http.n-gone = xkey.purge(req.http.Surrogate-Key);
        return (synth(200, "Purged " + req.http.n-gone));
    }
    if (req.method != "GET" && req.method != "HEAD") {
        return (pass);
    }
    # Varnish passes requests with credentials by default; here the API's Cache-Control and Vary
    # say what may be shared between requests with the same key.
    return (hash);
}

sub vcl_backend_response {
    if (beresp.http.Cache-Control !~ "(^|[ ,])public([ ,]|$)") {
        # Not shareable: remember that for a while (hit-for-miss), so requests go straight through.
        set beresp.uncacheable = true;
        set beresp.ttl = 120s;
        return (deliver);
    }
    if (beresp.http.Surrogate-Key) {
        set beresp.http.xkey = beresp.http.Surrogate-Key;
    }
}

sub vcl_deliver {
    unset resp.http.xkey;
    if (obj.hits > 0) {
        set resp.http.X-Cache = "HIT";
    } else {
        set resp.http.X-Cache = "MISS";
    }
}
