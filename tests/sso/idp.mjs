// A real OpenID provider (panva/oidc-provider, pinned in package.json) on 127.0.0.1 for the
// single sign-on tests. Started by tests/sso/idp.py; prints one JSON line {"issuer": ...} when ready.
//
// - One confidential client (client_secret_basic, code + PKCE); redirect URIs from the
//   IDP_REDIRECT_URIS environment variable (comma-separated) or POST /__admin/configure.
// - Test accounts (dev interactions: type the account id as login, any password): see ACCOUNTS.
//   Their groups are in the ID token's "groups" claim (scope profile), as Okta/Entra can be set up.
// - POST /__admin/rotate: a new RSA signing key with a new kid replaces the old one in the JWKS.
// - POST /__admin/tamper {"mode": "signature"|"aud"|"exp"|"none"}: the next token response
//   carries a broken ID token (signature bytes changed; or re-signed with the real key but a
//   wrong audience / an expiry in the past), to check the relying party refuses it.
// - POST /__admin/disable {"account": id}: the IdP refuses that account from then on.
import http from 'node:http';
import crypto from 'node:crypto';
import Provider from 'oidc-provider';
import { exportJWK, generateKeyPair, importJWK, SignJWT, decodeJwt } from 'jose';

const ACCOUNTS = {
  alice: { email: 'alice@example.com', name: 'Alice Admin', groups: ['proxy-admins', 'engineering'] },
  bob: { email: 'bob@example.com', name: 'Bob Developer', groups: ['engineering'] },
  carol: { email: 'carol@example.com', name: 'Carol Contractor', groups: [] },
  dave: { email: 'dave@example.com', name: 'Dave Leaver', groups: ['engineering'] },
};
const disabled = new Set();
const CLIENT = {
  client_id: process.env.IDP_CLIENT_ID || 'claude-proxy',
  client_secret: process.env.IDP_CLIENT_SECRET || 'claude-proxy-test-secret',
  grant_types: ['authorization_code'],
  response_types: ['code'],
  token_endpoint_auth_method: 'client_secret_basic',
};

let redirectUris = (process.env.IDP_REDIRECT_URIS || 'http://127.0.0.1/auth/oidc/callback').split(',');
let signingKey = null; // private JWK
let tamper = 'none';
let handler = null;
let issuer = null;

async function newSigningKey() {
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = await exportJWK(privateKey);
  return { ...jwk, kid: crypto.randomBytes(8).toString('hex'), alg: 'RS256', use: 'sig' };
}

async function brokenIdToken(token) {
  if (tamper === 'signature') {
    const [h, p, s] = token.split('.');
    const sig = Buffer.from(s, 'base64url');
    sig[0] ^= 0xff;
    return `${h}.${p}.${sig.toString('base64url')}`;
  }
  const claims = decodeJwt(token);
  if (tamper === 'aud') claims.aud = 'some-other-client';
  if (tamper === 'exp') { claims.iat -= 7200; claims.exp = Math.floor(Date.now() / 1000) - 3600; }
  const key = await importJWK(signingKey, 'RS256');
  return new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: signingKey.kid, typ: 'JWT' }).sign(key);
}

function build() {
  const provider = new Provider(issuer, {
    clients: [{ ...CLIENT, redirect_uris: redirectUris }],
    jwks: { keys: [signingKey] },
    cookies: { keys: ['sso-test-cookie-key'] },
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name', 'groups'] },
    conformIdTokenClaims: false, // the claims of the scopes go in the ID token, as Okta/Entra can do
    features: { devInteractions: { enabled: true } },
    async findAccount(ctx, id) {
      const account = ACCOUNTS[id];
      if (!account || disabled.has(id)) return undefined;
      return {
        accountId: id,
        async claims() {
          return { sub: id, email: account.email, email_verified: true, name: account.name, groups: account.groups };
        },
      };
    },
    async loadExistingGrant(ctx) {
      // First-party client: consent is implied (no consent screen in the tests).
      const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
      if (grantId) return ctx.oidc.provider.Grant.find(grantId);
      const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
      grant.addOIDCScope('openid email profile');
      await grant.save();
      return grant;
    },
  });
  provider.use(async (ctx, next) => {
    await next();
    if (ctx.path === '/token' && tamper !== 'none' && ctx.body && ctx.body.id_token) {
      ctx.body = { ...ctx.body, id_token: await brokenIdToken(ctx.body.id_token) };
      tamper = 'none';
    }
  });
  handler = provider.callback();
}

async function readJson(req) {
  let body = '';
  for await (const chunk of req) body += chunk;
  return body ? JSON.parse(body) : {};
}

async function admin(req, res) {
  const body = await readJson(req);
  const answer = {};
  if (req.url === '/__admin/rotate') {
    signingKey = await newSigningKey();
    build();
    answer.kid = signingKey.kid;
  } else if (req.url === '/__admin/configure') {
    redirectUris = body.redirect_uris;
    build();
  } else if (req.url === '/__admin/tamper') {
    tamper = body.mode;
  } else if (req.url === '/__admin/disable') {
    disabled.add(body.account);
  } else {
    res.writeHead(404).end();
    return;
  }
  res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ok: true, ...answer }));
}

const server = http.createServer((req, res) => {
  if (req.url.startsWith('/__admin/') && req.method === 'POST') {
    admin(req, res).catch((err) => res.writeHead(500).end(String(err)));
  } else {
    handler(req, res);
  }
});

signingKey = await newSigningKey();
server.listen(Number(process.env.IDP_PORT || 0), '127.0.0.1', () => {
  issuer = `http://127.0.0.1:${server.address().port}`;
  build();
  process.stdout.write(`${JSON.stringify({ issuer, client_id: CLIENT.client_id, kid: signingKey.kid })}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
