// Normalized client caches with their default settings against a running server: a reference stub
// (`_resolved: false`) must never be merged into the document it points to, in either order.
//
//   CACHES_AUTHORIZATION="Bearer <key>" node caches.mjs http://127.0.0.1:8000/graphql
//
// The server holds published authors and posts, every post with an author. Each check runs on a
// fresh client: Apollo Client's InMemoryCache and urql's graphcache, both as constructed by default.
// Prints one line per check and exits 1 unless every check is "ok".
import { ApolloClient, HttpLink, InMemoryCache, gql } from '@apollo/client';
import { Client, fetchExchange } from '@urql/core';
import { cacheExchange } from '@urql/exchange-graphcache';

const url = process.argv[2];
if (!url) {
  console.error('usage: node caches.mjs URL');
  process.exit(2);
}
const headers = { authorization: process.env.CACHES_AUTHORIZATION ?? '' };

// The full documents, and the same authors reached as stubs (depth 0), in the selections
// clients use: with `id`, and Aphex-style with `_id` / `_ref`.
const AUTHORS = gql`query Authors { allAuthor { id name _resolved } }`;
const STUBS = gql`query Stubs { allPost(depth: 0) { id title author { id name _resolved } } }`;
const REFS = gql`query Refs { allPost(depth: 0) { id author { _id _ref _resolved } } }`;
const RESOLVED = gql`query Resolved { allPost(depth: 1) { id author { id name _resolved } } }`;

function apollo() {
  const client = new ApolloClient({ link: new HttpLink({ uri: url, headers }), cache: new InMemoryCache() });
  return {
    name: 'Apollo Client',
    fetch: async (query) => (await client.query({ query, fetchPolicy: 'network-only' })).data,
    cached: async (query) => client.readQuery({ query }),
  };
}

function urql() {
  const client = new Client({
    url,
    exchanges: [cacheExchange({}), fetchExchange],
    fetchOptions: { headers },
  });
  const run = async (query, requestPolicy) => {
    const result = await client.query(query, {}, { requestPolicy }).toPromise();
    if (result.error) throw result.error;
    return result.data;
  };
  return {
    name: 'urql graphcache',
    fetch: (query) => run(query, 'network-only'),
    cached: (query) => run(query, 'cache-only'),
  };
}

const problems = [];
function expect(condition, what) {
  if (!condition) problems.push(what);
}

function authorsIntact(data, what) {
  expect(data && data.allAuthor.length > 0, `${what}: no authors in the cache`);
  for (const author of data?.allAuthor ?? []) {
    expect(typeof author.name === 'string', `${what}: author ${author.id} lost its name`);
    expect(author._resolved === true, `${what}: author ${author.id} reads _resolved: false`);
  }
}

function stubsIntact(data, what) {
  expect(data && data.allPost.length > 0, `${what}: no posts in the cache`);
  for (const post of data?.allPost ?? []) {
    const author = post.author;
    expect(author !== null, `${what}: post ${post.id} lost its author`);
    expect(author?._resolved === false, `${what}: the stub of post ${post.id} reads _resolved: true`);
    expect(author?.name === null, `${what}: the stub of post ${post.id} shows a name`);
  }
}

const checks = {
  'documents, then stubs': async (client) => {
    const first = await client.fetch(AUTHORS);
    authorsIntact(first, 'fetched');
    stubsIntact(await client.fetch(STUBS), 'fetched');
    authorsIntact(await client.cached(AUTHORS), 'authors after the stubs');
    stubsIntact(await client.cached(STUBS), 'stubs after the stubs');
  },
  'stubs, then documents': async (client) => {
    await client.fetch(STUBS);
    await client.fetch(AUTHORS);
    stubsIntact(await client.cached(STUBS), 'stubs after the authors');
    authorsIntact(await client.cached(AUTHORS), 'authors after the authors');
  },
  'resolved, then stubs, then resolved': async (client) => {
    await client.fetch(AUTHORS);
    const resolved = await client.fetch(RESOLVED);
    expect(
      resolved.allPost.every((p) => p.author._resolved === true && typeof p.author.name === 'string'),
      'depth 1 did not resolve the authors',
    );
    await client.fetch(STUBS);
    authorsIntact(await client.cached(AUTHORS), 'authors after stubs replaced resolved authors');
    stubsIntact(await client.cached(STUBS), 'stubs after resolved authors');
  },
  'Aphex-style _id, _ref': async (client) => {
    const authors = await client.fetch(AUTHORS);
    const ids = new Set(authors.allAuthor.map((a) => a.id));
    const refs = await client.fetch(REFS);
    for (const post of refs.allPost) {
      expect(post.author._id === null, `post ${post.id}: a stub's _id is not null`);
      expect(ids.has(post.author._ref), `post ${post.id}: _ref ${post.author._ref} is no author`);
    }
    authorsIntact(await client.cached(AUTHORS), 'authors after _id / _ref stubs');
  },
};

let failed = 0;
let total = 0;
for (const make of [apollo, urql]) {
  for (const [name, check] of Object.entries(checks)) {
    const client = make();
    total += 1;
    problems.length = 0;
    try {
      await check(client);
    } catch (error) {
      problems.push(`threw ${error?.stack ?? error}`);
    }
    if (problems.length === 0) {
      console.log(`ok      ${client.name}: ${name}`);
    } else {
      failed += 1;
      console.log(`not ok  ${client.name}: ${name}: ${problems.join('; ')}`);
    }
  }
}
console.log(`${total - failed} of ${total} checks passed`);
process.exit(failed === 0 ? 0 : 1);
