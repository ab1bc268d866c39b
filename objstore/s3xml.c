/* SPDX-License-Identifier: Apache-2.0 */
/*
 * s3xml.c: ListObjectsV2 and error-body parsing with libxml2.
 *
 * Bodies come from the network, so the parser never fetches anything (NONET), never
 * substitutes entities (no NOENT) and refuses any document that carries a DTD: S3 never
 * sends one, and a DTD is the way in for entity expansion attacks. A body that does not
 * parse completely (truncated by a reset, garbage) is -EIO and yields nothing partial.
 */
#include <errno.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "objstore/objstore_i.h"

#define OS3_XML_OPTIONS (XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING)

static pthread_once_t os3_xml_once = PTHREAD_ONCE_INIT;

static void os3_xml_init(void)
{
    /* libxml2 wants one initialisation before it is used from several threads. */
    xmlInitParser();
}

/* Parse @body; @return the document or NULL (malformed, truncated, has a DTD, wrong root). */
static xmlDoc *os3_xml_read(const char *body, size_t len, const char *root_name, xmlNode **root)
{
    pthread_once(&os3_xml_once, os3_xml_init);
    if (!body || len == 0 || len > INT32_MAX)
        return NULL;
    xmlDoc *doc = xmlReadMemory(body, (int)len, "s3.xml", NULL, OS3_XML_OPTIONS);
    if (!doc)
        return NULL;
    xmlNode *r = xmlDocGetRootElement(doc);
    if (doc->intSubset || doc->extSubset || !r || strcmp((const char *)r->name, root_name) != 0) {
        xmlFreeDoc(doc);
        return NULL;
    }
    *root = r;
    return doc;
}

static bool os3_xml_is(const xmlNode *n, const char *name)
{
    return n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, name) == 0;
}

/* Text of element @n. @return malloc'd string (never NULL unless out of memory). */
static char *os3_xml_text(const xmlNode *n)
{
    xmlChar *t = xmlNodeGetContent(n);
    char *s = strdup(t ? (const char *)t : "");
    xmlFree(t);
    return s;
}

/* Text of the first child element @name of @parent into @out; "" when absent. */
static void os3_xml_child_text(const xmlNode *parent, const char *name, char *out, size_t cap)
{
    out[0] = '\0';
    for (const xmlNode *c = parent->children; c; c = c->next) {
        if (os3_xml_is(c, name)) {
            xmlChar *t = xmlNodeGetContent(c);
            if (t)
                snprintf(out, cap, "%s", (const char *)t);
            xmlFree(t);
            return;
        }
    }
}

/* "2009-10-12T17:50:30.000Z" -> epoch seconds. @return 0 or -EIO. */
static int os3_xml_parse_time(const char *s, int64_t *out)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    int n = 0;
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec, &n) != 6)
        return -EIO;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    *out = (int64_t)timegm(&tm);
    return 0;
}

/* Decode a key if the listing is url-encoded, else duplicate it. @return malloc'd or NULL. */
static char *os3_xml_key(const xmlNode *n, bool url)
{
    char *raw = os3_xml_text(n);
    if (!raw || !url)
        return raw;
    char *dec = os3_uri_decode(raw);
    free(raw);
    return dec;
}

static int os3_xml_parse_contents(const xmlNode *c, bool url, struct objstore_entry *e)
{
    char buf[64];
    bool have_key = false;
    for (const xmlNode *f = c->children; f; f = f->next) {
        if (os3_xml_is(f, "Key")) {
            free(e->key);
            e->key = os3_xml_key(f, url);
            if (!e->key)
                return -EIO;
            have_key = true;
        }
    }
    if (!have_key || !e->key[0])
        return -EIO;
    os3_xml_child_text(c, "Size", buf, sizeof(buf));
    char *end;
    errno = 0;
    unsigned long long sz = strtoull(buf, &end, 10);
    if (!buf[0] || *end || errno || buf[0] == '-')
        return -EIO;
    e->size = sz;
    os3_xml_child_text(c, "ETag", e->etag, sizeof(e->etag));
    os3_xml_child_text(c, "LastModified", buf, sizeof(buf));
    if (buf[0] && os3_xml_parse_time(buf, &e->mtime_sec) < 0)
        return -EIO;
    return 0;
}

int os3_xml_parse_list(const char *body, size_t len, struct objstore_list_result *res)
{
    memset(res, 0, sizeof(*res));
    xmlNode *root;
    xmlDoc *doc = os3_xml_read(body, len, "ListBucketResult", &root);
    if (!doc)
        return -EIO;

    char enc[16], trunc[16];
    os3_xml_child_text(root, "EncodingType", enc, sizeof(enc));
    os3_xml_child_text(root, "IsTruncated", trunc, sizeof(trunc));
    bool url = strcmp(enc, "url") == 0;
    size_t n_contents = 0, n_prefixes = 0;
    for (const xmlNode *c = root->children; c; c = c->next) {
        n_contents += os3_xml_is(c, "Contents");
        n_prefixes += os3_xml_is(c, "CommonPrefixes");
    }
    int rc = -EIO;
    res->truncated = strcmp(trunc, "true") == 0;
    if (n_contents && !(res->entries = calloc(n_contents, sizeof(*res->entries))))
        goto fail_nomem;
    if (n_prefixes && !(res->prefixes = calloc(n_prefixes, sizeof(*res->prefixes))))
        goto fail_nomem;

    for (const xmlNode *c = root->children; c; c = c->next) {
        if (os3_xml_is(c, "Contents")) {
            struct objstore_entry *e = &res->entries[res->n_entries++];
            if (os3_xml_parse_contents(c, url, e) < 0)
                goto fail;
        } else if (os3_xml_is(c, "CommonPrefixes")) {
            for (const xmlNode *p = c->children; p; p = p->next) {
                if (os3_xml_is(p, "Prefix")) {
                    char *pre = os3_xml_key(p, url);
                    if (!pre)
                        goto fail;
                    res->prefixes[res->n_prefixes++] = pre;
                    break;
                }
            }
        } else if (os3_xml_is(c, "NextContinuationToken")) {
            free(res->next_token);
            res->next_token = os3_xml_text(c);
            if (!res->next_token)
                goto fail_nomem;
        }
    }
    if (res->truncated && (!res->next_token || !res->next_token[0]))
        goto fail; /* cannot page on */
    if (!res->truncated) {
        free(res->next_token);
        res->next_token = NULL;
    }
    xmlFreeDoc(doc);
    return 0;

fail_nomem:
    rc = -ENOMEM;
fail:
    objstore_list_result_free(res);
    xmlFreeDoc(doc);
    return rc;
}

int os3_xml_parse_error(const char *body, size_t len, char *code, size_t code_cap, char *msg,
                        size_t msg_cap)
{
    if (code_cap)
        code[0] = '\0';
    if (msg_cap)
        msg[0] = '\0';
    xmlNode *root;
    xmlDoc *doc = os3_xml_read(body, len, "Error", &root);
    if (!doc)
        return -EIO;
    if (code_cap)
        os3_xml_child_text(root, "Code", code, code_cap);
    if (msg_cap)
        os3_xml_child_text(root, "Message", msg, msg_cap);
    xmlFreeDoc(doc);
    return 0;
}

/* The first child element @name of @parent, or NULL. */
static const xmlNode *os3_xml_child(const xmlNode *parent, const char *name)
{
    for (const xmlNode *c = parent ? parent->children : NULL; c; c = c->next)
        if (os3_xml_is(c, name))
            return c;
    return NULL;
}

int os3_xml_parse_sts(const char *body, size_t len, const char *action,
                      struct objstore_credentials *out)
{
    char root_name[64], result_name[64], exp[64];
    int rc = -EIO;
    xmlNode *root;

    memset(out, 0, sizeof(*out));
    snprintf(root_name, sizeof(root_name), "%sResponse", action);
    snprintf(result_name, sizeof(result_name), "%sResult", action);
    xmlDoc *doc = os3_xml_read(body, len, root_name, &root);
    if (!doc)
        return -EIO;
    const xmlNode *cr = os3_xml_child(os3_xml_child(root, result_name), "Credentials");
    if (!cr)
        goto out;
    os3_xml_child_text(cr, "AccessKeyId", out->access_key, sizeof(out->access_key));
    os3_xml_child_text(cr, "SecretAccessKey", out->secret_key, sizeof(out->secret_key));
    os3_xml_child_text(cr, "SessionToken", out->session_token, sizeof(out->session_token));
    os3_xml_child_text(cr, "Expiration", exp, sizeof(exp));
    /* A value cut by the fixed fields would sign with the wrong key: refuse it. */
    if (!out->access_key[0] || !out->secret_key[0] || !out->session_token[0] ||
        strlen(out->session_token) + 1 >= sizeof(out->session_token) ||
        strlen(out->secret_key) + 1 >= sizeof(out->secret_key) ||
        os3_parse_iso8601(exp, &out->expiration) != 0)
        goto out;
    rc = 0;
out:
    if (rc)
        OPENSSL_cleanse(out, sizeof(*out));
    xmlFreeDoc(doc);
    return rc;
}

int os3_xml_parse_sts_error(const char *body, size_t len, char *code, size_t code_cap, char *msg,
                            size_t msg_cap)
{
    xmlNode *root;

    code[0] = msg[0] = '\0';
    xmlDoc *doc = os3_xml_read(body, len, "ErrorResponse", &root);
    if (!doc)
        return -EIO;
    const xmlNode *e = os3_xml_child(root, "Error");
    if (e) {
        os3_xml_child_text(e, "Code", code, code_cap);
        os3_xml_child_text(e, "Message", msg, msg_cap);
    }
    xmlFreeDoc(doc);
    return e ? 0 : -EIO;
}

int os3_xml_parse_mpu_create(const char *body, size_t len, char *upload_id, size_t cap)
{
    xmlNode *root;
    xmlDoc *doc = os3_xml_read(body, len, "InitiateMultipartUploadResult", &root);

    upload_id[0] = '\0';
    if (!doc)
        return -EIO;
    os3_xml_child_text(root, "UploadId", upload_id, cap);
    xmlFreeDoc(doc);
    return upload_id[0] && strlen(upload_id) + 1 < cap ? 0 : -EIO;
}

int os3_xml_parse_mpu_complete(const char *body, size_t len, char *etag, size_t etag_cap,
                               char *code, size_t code_cap, char *msg, size_t msg_cap)
{
    xmlNode *root;
    xmlDoc *doc;

    code[0] = msg[0] = '\0';
    if ((doc = os3_xml_read(body, len, "Error", &root))) {
        os3_xml_child_text(root, "Code", code, code_cap);
        os3_xml_child_text(root, "Message", msg, msg_cap);
        xmlFreeDoc(doc);
        return -EAGAIN;
    }
    doc = os3_xml_read(body, len, "CompleteMultipartUploadResult", &root);
    if (!doc)
        return -EIO;
    char raw[OBJSTORE_ETAG_MAX];
    os3_xml_child_text(root, "ETag", raw, sizeof(raw));
    xmlFreeDoc(doc);
    /* quoted like the ETag header (AWS quotes it here too; radosgw does not) */
    if (!raw[0] ||
        (size_t)snprintf(etag, etag_cap, raw[0] == '"' ? "%s" : "\"%s\"", raw) >= etag_cap)
        return -EIO;
    return 0;
}
