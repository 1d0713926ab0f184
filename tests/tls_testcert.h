/* A self-signed ECDSA P-256 certificate and key written to files, for the
 * TLS unit test and fuzz target (the integration tests use the openssl CLI). */
#ifndef WH_TEST_TLS_TESTCERT_H
#define WH_TEST_TLS_TESTCERT_H

#include <stdio.h>

#include <openssl/pem.h>
#include <openssl/x509v3.h>

/* Writes crt and key (PEM) for CN cn, with subjectAltName san ("DNS:a,DNS:b")
 * unless NULL, valid from a minute ago for a day. 0, or -1. */
static inline int wh_test_self_signed(const char *crt, const char *key, const char *cn,
                                      const char *san)
{
    EVP_PKEY *pk = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    int rc = -1;
    if (!pk || !x) goto out;
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, pk);
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, n);
    if (san) {
        X509V3_CTX v3;
        X509V3_set_ctx_nodb(&v3);
        X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
        X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san);
        if (!ext) goto out;
        X509_add_ext(x, ext, -1);
        X509_EXTENSION_free(ext);
    }
    if (!X509_sign(x, pk, EVP_sha256())) goto out;
    FILE *f = fopen(crt, "w");
    if (!f) goto out;
    PEM_write_X509(f, x);
    fclose(f);
    if (!(f = fopen(key, "w"))) goto out;
    PEM_write_PrivateKey(f, pk, NULL, NULL, 0, NULL, NULL);
    fclose(f);
    rc = 0;
out:
    X509_free(x);
    EVP_PKEY_free(pk);
    return rc;
}

#endif
