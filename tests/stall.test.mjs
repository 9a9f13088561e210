// A client that declares a body and never sends it still gets its refusal in seconds.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { startWorker } from "./support/worker.mjs";

let worker;
let port;
before(async () => {
  const probe = net.createServer();
  await new Promise((r) => probe.listen(0, "127.0.0.1", r));
  port = probe.address().port;
  await new Promise((r) => probe.close(r));
  worker = await startWorker({}, { port });
});
after(() => worker?.close());

/** Sends only the head of a request over a raw socket; resolves with the status line. */
function stalledRequest(head, timeoutMs = 15_000) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1", () => socket.write(head));
    let data = "";
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on("data", (chunk) => {
      data += chunk;
      if (data.includes("\r\n")) {
        clearTimeout(timer);
        socket.destroy();
        resolve(data.split("\r\n")[0]);
      }
    });
    socket.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

for (const [path, expected] of [["/api/public", "405"], ["/nothing", "404"], ["/voiceit_token", "401"]]) {
  test(`POST ${path} with a body that never comes answers ${expected} in seconds`, async () => {
    const started = Date.now();
    const line = await stalledRequest(`POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\n`);
    assert.match(line, new RegExp(` ${expected} `));
    assert.ok(Date.now() - started < 10_000);
  });
}
