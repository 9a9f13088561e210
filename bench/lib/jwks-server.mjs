// The least of an Auth0 tenant that `GET /api/private` needs: a JWKS on loopback and RS256
// access tokens signed with its key. Used only when tests/support/auth0-tenant.mjs is absent.
import { generateKeyPairSync, randomBytes, sign } from "node:crypto";
import { once } from "node:events";
import http from "node:http";

const b64url = (value) => Buffer.from(JSON.stringify(value)).toString("base64url");

export async function startJwksServer({ audience, clientId }) {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const kid = randomBytes(8).toString("hex");
  const { n, e } = publicKey.export({ format: "jwk" });
  const jwks = JSON.stringify({ keys: [{ kty: "RSA", use: "sig", alg: "RS256", kid, n, e }] });
  let fetches = 0;

  const server = http.createServer((req, res) => {
    if (req.method === "GET" && req.url === "/.well-known/jwks.json") {
      fetches += 1;
      res.writeHead(200, { "content-type": "application/json" }).end(jwks);
    } else {
      res.writeHead(404, { "content-type": "application/json" }).end('{"error":"not_found"}');
    }
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const host = `127.0.0.1:${server.address().port}`;
  const issuer = `http://${host}/`;

  return {
    host,
    baseUrl: `http://${host}`,
    signAccessToken(claims = {}) {
      const iat = Math.floor(Date.now() / 1000);
      const payload = { iss: issuer, aud: [audience, `${issuer}userinfo`], azp: clientId, iat, exp: iat + 3600, ...claims };
      const input = `${b64url({ alg: "RS256", typ: "JWT", kid })}.${b64url(payload)}`;
      return `${input}.${sign("sha256", Buffer.from(input), privateKey).toString("base64url")}`;
    },
    jwksFetches: () => fetches,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
