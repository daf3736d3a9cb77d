/**
 * The PoWeb server under mutated requests and handshakes (targets/poweb.ts), over
 * loopback. relaynet-core costs milliseconds a case on both sides, so CI runs
 * 3 000 cases (about 20 s on two idle cores); `run.ts` runs more.
 */
import { fuzzTests } from "./_testing.ts";
import { targets } from "./targets/poweb.ts";

fuzzTests("fuzz PoWeb server requests (bindings/gateway/poweb_server.ts)", targets);
