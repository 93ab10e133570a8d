#ifndef DYNAMO_BENCH_CLIBCRYPTO_SHIM_H
#define DYNAMO_BENCH_CLIBCRYPTO_SHIM_H
// The system's libcrypto (Debian's libssl-dev), for its MD5: compared with the project's
// own MD5 and swift-crypto's in the micro-benchmarks.
#include <openssl/evp.h>
#endif
