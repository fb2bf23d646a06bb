// `*.localhost` names resolve to 127.0.0.1 (as browsers and the Python tests' harness do; glibc
// does not). Loaded with `node --import ./localhost.mjs`.
import dns from "node:dns";

const lookup = dns.lookup;
dns.lookup = function (host, options, callback) {
  if (typeof host === "string" && (host === "localhost" || host.endsWith(".localhost"))) {
    const cb = typeof options === "function" ? options : callback;
    const all = typeof options === "object" && options !== null && options.all;
    process.nextTick(() => (all ? cb(null, [{ address: "127.0.0.1", family: 4 }]) : cb(null, "127.0.0.1", 4)));
    return;
  }
  return lookup.call(this, host, options, callback);
};
