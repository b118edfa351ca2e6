// The HTTP server in front of Next.js, started by scripts/run.ts for `npm run dev` and
// `npm start`. Route handlers, server actions and `headers()` never see the socket, and the
// X-Forwarded-For header Next.js fills in keeps whatever the client sent. So this server stamps
// the socket's address into a header of its own on every request, overwriting any copy the
// client sent; lib/auth/client-address.ts reads it. Plain JavaScript run by plain Node: the
// parent runs under tsx with the react-server condition, which Next's renderer must not inherit.
import { createServer } from "node:http";
import next from "next";

// Keep in sync with CLIENT_ADDRESS_HEADER in lib/auth/client-address.ts.
const CLIENT_ADDRESS_HEADER = "x-mailwarden-client-ip";

const [mode, portText, hostname] = process.argv.slice(2);
const dev = mode === "dev";
const port = Number(portText);

const server = createServer();
const app = next({ dev, port, hostname, httpServer: server });
const handle = app.getRequestHandler();

try {
  await app.prepare();
} catch (error) {
  console.error(error);
  process.exit(1);
}

server.on("request", (req, res) => {
  req.headers[CLIENT_ADDRESS_HEADER] = req.socket.remoteAddress ?? "";
  handle(req, res).catch((error) => {
    console.error(error);
    if (!res.headersSent) res.statusCode = 500;
    res.end();
  });
});

server.listen(port, hostname, () => {
  const shown = hostname ?? "localhost";
  console.info(`[mailwarden] ${dev ? "dev" : "production"} server on http://${shown}:${port}`);
});
