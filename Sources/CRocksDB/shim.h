#ifndef DYNAMO_CROCKSDB_SHIM_H
#define DYNAMO_CROCKSDB_SHIM_H
#include <rocksdb/c.h>
#endif
