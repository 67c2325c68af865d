/* The comparison tests/jtext and fuzz_jtext make of jtext's values with
 * jansson's. */
#ifndef FERRY_TESTS_JTEXT_SAME_H
#define FERRY_TESTS_JTEXT_SAME_H

#include <jansson.h>
#include <string.h>

/* Nonzero if a and b are the same value in every respect jtext promises:
 * types (an integer is not a real), key order, string bytes, and the bits
 * of reals (so -0.0 is not 0.0). */
static inline int same(const json_t *a, const json_t *b) {
    if (json_typeof(a) != json_typeof(b))
        return 0;
    switch (json_typeof(a)) {
    case JSON_OBJECT: {
        if (json_object_size(a) != json_object_size(b))
            return 0;
        void *ia = json_object_iter((json_t *)a);
        void *ib = json_object_iter((json_t *)b);
        while (ia && ib) {
            size_t la = json_object_iter_key_len(ia);
            if (la != json_object_iter_key_len(ib) ||
                memcmp(json_object_iter_key(ia), json_object_iter_key(ib),
                       la) ||
                !same(json_object_iter_value(ia), json_object_iter_value(ib)))
                return 0;
            ia = json_object_iter_next((json_t *)a, ia);
            ib = json_object_iter_next((json_t *)b, ib);
        }
        return !ia && !ib;
    }
    case JSON_ARRAY:
        if (json_array_size(a) != json_array_size(b))
            return 0;
        for (size_t i = 0; i < json_array_size(a); i++)
            if (!same(json_array_get(a, i), json_array_get(b, i)))
                return 0;
        return 1;
    case JSON_STRING:
        return json_string_length(a) == json_string_length(b) &&
               memcmp(json_string_value(a), json_string_value(b),
                      json_string_length(a)) == 0;
    case JSON_INTEGER:
        return json_integer_value(a) == json_integer_value(b);
    case JSON_REAL: {
        double x = json_real_value(a), y = json_real_value(b);
        return memcmp(&x, &y, sizeof(x)) == 0;
    }
    default:
        return 1;
    }
}

#endif
