// The bench's peer: the presigning endpoint a team writes instead of running
// the edge, the way the libraries' docs show it. It verifies an HS256 JWT from
// ?token= with jsonwebtoken, checks the token's grants, and answers 302 with a
// fresh presigned GetObject URL from @aws-sdk/s3-request-presigner.
//
// Configured from the environment (the bench sets every variable):
//   PEER_HOST, PEER_PORT                 where to listen (127.0.0.1, required port)
//   S3_ENDPOINT, S3_REGION, S3_BUCKET    the store (path-style addressing)
//   AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY
//   SOURCE                               the source name in /v1/s/SOURCE/KEY
//   JWT_SECRET, JWT_ISSUER, JWT_AUDIENCE the token's key and expected claims
//   URL_TTL_SECONDS                      presigned URL lifetime (default 3600)
'use strict';

const http = require('node:http');
const jwt = require('jsonwebtoken');
const { S3Client, GetObjectCommand } = require('@aws-sdk/client-s3');
const { getSignedUrl } = require('@aws-sdk/s3-request-presigner');

const env = (name, def) => {
  const v = process.env[name];
  if (v === undefined || v === '') {
    if (def === undefined) throw new Error(`${name} is required`);
    return def;
  }
  return v;
};

const crypto = require('node:crypto');

const host = env('PEER_HOST', '127.0.0.1');
const port = Number(env('PEER_PORT'));
const bucket = env('S3_BUCKET');
const source = env('SOURCE');
// The secret as a KeyObject, made once. jsonwebtoken's README passes a plain
// string, but then jsonwebtoken 9 first tries (and fails) to parse it as a
// public key on every verify: about 0.8 ms per request here, against 12 µs
// with a KeyObject. The bench gives the peer its best shot.
const secret = crypto.createSecretKey(Buffer.from(env('JWT_SECRET')));
const issuer = env('JWT_ISSUER', '');
const audience = env('JWT_AUDIENCE', '');
const ttl = Number(env('URL_TTL_SECONDS', '3600'));

const s3 = new S3Client({
  region: env('S3_REGION', 'us-east-1'),
  endpoint: env('S3_ENDPOINT'),
  forcePathStyle: true,
  credentials: {
    accessKeyId: env('AWS_ACCESS_KEY_ID'),
    secretAccessKey: env('AWS_SECRET_ACCESS_KEY'),
  },
});

const verifyOptions = { algorithms: ['HS256'] };
if (issuer) verifyOptions.issuer = issuer;
if (audience) verifyOptions.audience = audience;

const prefix = `/v1/s/${source}/`;

function fail(res, status, code, message) {
  const body = JSON.stringify({ error: code, message });
  const headers = { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) };
  if (status === 401) headers['WWW-Authenticate'] = 'Bearer';
  res.writeHead(status, headers);
  res.end(body);
}

async function handle(req, res) {
  const url = new URL(req.url, 'http://peer');
  if (!url.pathname.startsWith(prefix)) return fail(res, 404, 'not_found', 'unknown source');
  let key;
  try {
    key = decodeURIComponent(url.pathname.slice(prefix.length));
  } catch {
    return fail(res, 400, 'bad_reference', 'bad escape');
  }
  const token = url.searchParams.get('token');
  if (!token) return fail(res, 401, 'token_missing', 'no token');
  let claims;
  try {
    claims = jwt.verify(token, secret, verifyOptions);
  } catch {
    return fail(res, 401, 'token_invalid', 'bad token');
  }
  const grants = Array.isArray(claims.grants) ? claims.grants : [];
  if (!grants.some((g) => g && g.source === source && key.startsWith(g.prefix || ''))) {
    return fail(res, 403, 'forbidden', 'no grant covers this object');
  }
  const location = await getSignedUrl(s3, new GetObjectCommand({ Bucket: bucket, Key: key }), { expiresIn: ttl });
  const headers = {
    Location: location,
    'Cache-Control': `private, max-age=${Math.floor(ttl / 2)}`,
    'Referrer-Policy': 'no-referrer',
    'Content-Length': 0,
  };
  const origin = req.headers.origin;
  if (origin) {
    headers['Access-Control-Allow-Origin'] = origin;
    headers.Vary = 'Origin';
  }
  res.writeHead(302, headers);
  res.end();
}

const server = http.createServer((req, res) => {
  handle(req, res).catch(() => {
    if (!res.headersSent) fail(res, 500, 'internal', 'internal error');
    else res.destroy();
  });
});
server.keepAliveTimeout = 65000;
server.headersTimeout = 66000;
server.listen(port, host, () => {
  console.log(`listening on http://${host}:${server.address().port}`);
});
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => server.close(() => process.exit(0)));
}
