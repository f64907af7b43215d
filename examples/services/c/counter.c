/* An edgeshift service in C: guest ABI v1 (docs/service-abi.md) with no library at all.
 * It keeps an event log summary: how many inputs it saw, the sum of their bytes, and a
 * running hash over them (h = h * 31 + byte, seeded by the 8-byte configuration).
 * The answer is the three values, 8 bytes each, little endian.
 *
 * Build with Debian's clang and lld:
 *   clang --target=wasm32 -O2 -nostdlib -Wl,--no-entry -o counter.wasm counter.c
 */

typedef unsigned long long u64;

#define BUFFER_SIZE 4096

static unsigned char buffer[BUFFER_SIZE];
static u64 count, sum, hash;

#define EXPORT(name) __attribute__((export_name(name)))

EXPORT("es_abi_version") int es_abi_version(void) { return 1; }
EXPORT("es_buffer") int es_buffer(void) { return (int)(long)buffer; }
EXPORT("es_buffer_size") int es_buffer_size(void) { return BUFFER_SIZE; }

EXPORT("es_init") int es_init(int len) {
    if (len != 0 && len != 8) {
        return 1;
    }
    hash = 0;
    for (int i = 0; i < len; i++) {
        hash |= (u64)buffer[i] << (8 * i);
    }
    return 0;
}

static void put(int at, u64 v) {
    for (int i = 0; i < 8; i++) {
        buffer[at + i] = (unsigned char)(v >> (8 * i));
    }
}

EXPORT("es_input") int es_input(long long seq, int len) {
    (void)seq;
    if (len < 0 || len > BUFFER_SIZE) {
        return -1;
    }
    for (int i = 0; i < len; i++) {
        sum += buffer[i];
        hash = hash * 31 + buffer[i];
    }
    count++;
    put(0, count);
    put(8, sum);
    put(16, hash);
    return 24;
}
