#ifndef DYNAMO_COPENSSL_SHIM_H
#define DYNAMO_COPENSSL_SHIM_H
// Only HMAC-SHA256 is used, from the system's libcrypto (Debian's libssl-dev).
#include <openssl/evp.h>
#include <openssl/hmac.h>
#endif
