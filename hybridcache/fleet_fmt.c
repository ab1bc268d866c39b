/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fleet_fmt.c: keys and values of the fleet tier.
 *
 * A piece's value is a 64-byte header, an optional 32-byte HMAC-SHA256, then the piece's
 * bytes. Header (little-endian): magic "TFB1", version, flags (bit 0: a MAC follows),
 * header length, piece index, piece count, block length, piece offset, piece length,
 * block CRC32C, piece CRC32C, SHA-256 of the block's identity. The MAC covers the header
 * and the bytes (with the MAC field zeroed), under the fleet's shared secret.
 * Memcached keys are "tierfs1:" + the first 40 hex digits of the identity hash + ":" +
 * the piece index (or "L" for the lease): 52-57 bytes, far under memcached's 250, and a
 * new format version gets new keys.
 */
#include <errno.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>

#include "common/util.h"
#include "hybridcache/fleet_i.h"

static void hc_fleet_put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t hc_fleet_get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void hc_fleet_put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static uint16_t hc_fleet_get16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

void hc_fleet_hash(const void *id, size_t idlen, uint32_t piece_size, uint8_t out[32])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    uint8_t ps[4];
    unsigned olen = 32;

    hc_fleet_put32(ps, piece_size);
    if (!ctx || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) ||
        !EVP_DigestUpdate(ctx, "tierfs fleet v1\n", 16) || !EVP_DigestUpdate(ctx, ps, 4) ||
        !EVP_DigestUpdate(ctx, id, idlen) || !EVP_DigestFinal_ex(ctx, out, &olen))
        memset(out, 0, 32); /* only on allocation failure: every block then misses */
    EVP_MD_CTX_free(ctx);
}

size_t hc_fleet_key(const uint8_t hash[32], int piece, char *out)
{
    static const char hex[] = "0123456789abcdef";
    char *p = out;

    memcpy(p, "tierfs1:", 8);
    p += 8;
    for (int i = 0; i < 20; i++) {
        *p++ = hex[hash[i] >> 4];
        *p++ = hex[hash[i] & 0xf];
    }
    if (piece < 0)
        p += snprintf(p, 3, ":L");
    else
        p += snprintf(p, 8, ":%d", piece);
    return (size_t)(p - out);
}

unsigned hc_fleet_pieces(size_t len, uint32_t piece_size)
{
    return len == 0 ? 1 : (unsigned)((len + piece_size - 1) / piece_size);
}

/* HMAC-SHA256 under @secret of @hdr (@hlen bytes, its MAC field zeroed) then @data.
 * @return 0, or -EIO when OpenSSL fails. */
static int hc_fleet_mac(const uint8_t *secret, size_t secret_len, const uint8_t *hdr, size_t hlen,
                        const uint8_t *data, size_t dlen, uint8_t out[HC_FLEET_MAC])
{
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", (char *)"SHA256", 0),
                           OSSL_PARAM_construct_end()};
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
    size_t olen = 0;
    int ok = ctx && EVP_MAC_init(ctx, secret, secret_len, params) &&
             EVP_MAC_update(ctx, hdr, hlen) && EVP_MAC_update(ctx, data, dlen) &&
             EVP_MAC_final(ctx, out, &olen, HC_FLEET_MAC) && olen == HC_FLEET_MAC;

    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
    return ok ? 0 : -EIO;
}

ssize_t hc_fleet_encode(const uint8_t hash[32], const void *block, size_t len, uint32_t block_crc,
                        uint32_t piece_size, unsigned piece, const uint8_t *secret,
                        size_t secret_len, void *out, size_t cap)
{
    unsigned pieces = hc_fleet_pieces(len, piece_size);
    size_t off = (size_t)piece * piece_size, plen,
           hlen = HC_FLEET_HDR + (secret ? HC_FLEET_MAC : 0);
    uint8_t *v = out;

    if (piece >= pieces || pieces > HC_FLEET_PIECES_MAX || len > UINT32_MAX)
        return -EINVAL;
    plen = CMN_MIN((size_t)piece_size, len - off);
    if (cap < hlen + plen)
        return -EINVAL;
    memset(v, 0, hlen);
    hc_fleet_put32(v, HC_FLEET_MAGIC);
    v[4] = HC_FLEET_VERSION;
    v[5] = secret ? HC_FLEET_FLAG_MAC : 0;
    hc_fleet_put16(v + 6, (uint16_t)hlen);
    hc_fleet_put16(v + 8, (uint16_t)piece);
    hc_fleet_put16(v + 10, (uint16_t)pieces);
    hc_fleet_put32(v + 12, (uint32_t)len);
    hc_fleet_put32(v + 16, (uint32_t)off);
    hc_fleet_put32(v + 20, (uint32_t)plen);
    hc_fleet_put32(v + 24, block_crc);
    hc_fleet_put32(v + 28, cmn_crc32c(0, (const uint8_t *)block + off, plen));
    memcpy(v + 32, hash, 32);
    memcpy(v + hlen, (const uint8_t *)block + off, plen);
    /* the MAC field is still zero here, as the check expects */
    if (secret && hc_fleet_mac(secret, secret_len, v, hlen, v + hlen, plen, v + HC_FLEET_HDR) != 0)
        return -EIO;
    return (ssize_t)(hlen + plen);
}

const char *hc_fleet_verdict_str(enum hc_fleet_verdict v)
{
    switch (v) {
    case HC_FLEET_OK:
        return "ok";
    case HC_FLEET_BAD_SHORT:
        return "truncated value";
    case HC_FLEET_BAD_MAGIC:
        return "not a tierfs value of this format version";
    case HC_FLEET_BAD_ID:
        return "another block's value";
    case HC_FLEET_BAD_PLACE:
        return "piece index, count, offset or length wrong";
    case HC_FLEET_BAD_CRC:
        return "checksum mismatch";
    case HC_FLEET_BAD_UNSIGNED:
        return "unsigned value (fleet_secret is set)";
    case HC_FLEET_BAD_MAC:
        return "MAC does not verify";
    }
    return "?";
}

enum hc_fleet_verdict hc_fleet_decode(const uint8_t hash[32], size_t len, uint32_t piece_size,
                                      unsigned piece, const uint8_t *secret, size_t secret_len,
                                      const void *v, size_t vlen, void *block, uint32_t *block_crc)
{
    const uint8_t *p = v;
    unsigned pieces = hc_fleet_pieces(len, piece_size);
    size_t off = (size_t)piece * piece_size, plen, hlen;
    bool mac;

    if (vlen < HC_FLEET_HDR)
        return HC_FLEET_BAD_SHORT;
    if (hc_fleet_get32(p) != HC_FLEET_MAGIC || p[4] != HC_FLEET_VERSION)
        return HC_FLEET_BAD_MAGIC;
    mac = (p[5] & HC_FLEET_FLAG_MAC) != 0;
    hlen = hc_fleet_get16(p + 6);
    if (hlen != HC_FLEET_HDR + (mac ? HC_FLEET_MAC : 0) || (p[5] & ~HC_FLEET_FLAG_MAC))
        return HC_FLEET_BAD_MAGIC;
    if (CRYPTO_memcmp(p + 32, hash, 32) != 0)
        return HC_FLEET_BAD_ID;
    if (piece >= pieces || off > len)
        return HC_FLEET_BAD_PLACE;
    plen = CMN_MIN((size_t)piece_size, len - off);
    if (hc_fleet_get16(p + 8) != piece || hc_fleet_get16(p + 10) != pieces ||
        hc_fleet_get32(p + 12) != len || hc_fleet_get32(p + 16) != off ||
        hc_fleet_get32(p + 20) != plen)
        return HC_FLEET_BAD_PLACE;
    if (vlen != hlen + plen)
        return vlen < hlen + plen ? HC_FLEET_BAD_SHORT : HC_FLEET_BAD_PLACE;
    if (secret) {
        uint8_t want[HC_FLEET_MAC], hdr[HC_FLEET_HDR + HC_FLEET_MAC];

        if (!mac)
            return HC_FLEET_BAD_UNSIGNED;
        /* the MAC was computed with its own field zeroed */
        memcpy(hdr, p, hlen);
        memset(hdr + HC_FLEET_HDR, 0, HC_FLEET_MAC);
        if (hc_fleet_mac(secret, secret_len, hdr, hlen, p + hlen, plen, want) != 0 ||
            CRYPTO_memcmp(want, p + HC_FLEET_HDR, HC_FLEET_MAC) != 0)
            return HC_FLEET_BAD_MAC;
    }
    if (cmn_crc32c(0, p + hlen, plen) != hc_fleet_get32(p + 28))
        return HC_FLEET_BAD_CRC;
    memcpy((uint8_t *)block + off, p + hlen, plen);
    *block_crc = hc_fleet_get32(p + 24);
    return HC_FLEET_OK;
}
