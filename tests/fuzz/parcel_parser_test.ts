/**
 * The fast CMS/RAMF parcel parser against relaynet-core, differentially
 * (targets/parcel.ts). relaynet-core costs milliseconds a case, so CI runs 5 000
 * cases (about 30 s on two idle cores); `run.ts` runs more.
 */
import { fuzzTests } from "./_testing.ts";
import { targets } from "./targets/parcel.ts";

fuzzTests("fuzz FastParcelValidator against relaynet-core", targets);
