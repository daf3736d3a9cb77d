/** Protocol of the benchmarks' baseline: a bare stream that acknowledges each frame with one octet. */
export const RAW_PROTOCOL = "/relaymail-bench/raw/1.0.0";
