/* formats/filter.c: the byte-plane filters are exact inverses for every width and length, and put
 * the bytes where the container format says. */
#include "formats/filter.h"
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

static void fill(uint8_t *p, size_t n, uint32_t seed)
{
    uint32_t x = seed | 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (uint8_t)x;
    }
}

/* Every filter and width, lengths around the vector block (64 elements) and odd counts, at
 * unaligned addresses: undo(apply(x)) == x. */
START_TEST(test_round_trip_every_width_and_length)
{
    static const size_t elems[] = {0, 1, 2, 3, 63, 64, 65, 127, 128, 129, 1000, 4097};
    static const unsigned widths[] = {2, 4, 8};
    for (int f = HOIST_FILTER_NONE; f <= HOIST_FILTER_EXPONENT; f++)
        for (size_t wi = 0; wi < 3; wi++)
            for (size_t ei = 0; ei < sizeof elems / sizeof *elems; ei++) {
                size_t n = elems[ei] * widths[wi];
                uint8_t *a = malloc(n + 3), *b = malloc(n + 3), *c = malloc(n + 3);
                fill(a + 1, n, (uint32_t)(n + 7));
                hoist__filter_apply((hoist_filter)f, widths[wi], a + 1, b + 2, n);
                hoist__filter_undo((hoist_filter)f, widths[wi], b + 2, c + 3, n);
                ck_assert_msg(memcmp(a + 1, c + 3, n) == 0, "filter %d width %u, %zu elements",
                              f, widths[wi], elems[ei]);
                free(a);
                free(b);
                free(c);
            }
}
END_TEST

/* bf16 1.0 is 0x3f80 and -2.0 is 0xc000: after the exponent filter the top plane is exactly the
 * exponents (0x7f, 0x80) and the sign sits in bit 0 of the low plane. */
START_TEST(test_exponent_plane_of_bf16)
{
    const uint8_t in[4] = {0x80, 0x3f, 0x00, 0xc0}; /* little-endian 0x3f80, 0xc000 */
    uint8_t out[4];
    hoist__filter_apply(HOIST_FILTER_EXPONENT, 2, in, out, 4);
    ck_assert_uint_eq(out[2], 0x7f); /* exponent of 1.0 */
    ck_assert_uint_eq(out[3], 0x80); /* exponent of -2.0 */
    ck_assert_uint_eq(out[0], 0x00); /* mantissa 0, sign + */
    ck_assert_uint_eq(out[1], 0x01); /* mantissa 0, sign - */
    hoist__filter_apply(HOIST_FILTER_PLANES, 2, in, out, 4);
    const uint8_t planes[4] = {0x80, 0x00, 0x3f, 0xc0};
    ck_assert_mem_eq(out, planes, 4);
}
END_TEST

START_TEST(test_widths_and_defaults)
{
    ck_assert_uint_eq(hoist__filter_width(HOIST_DTYPE_BF16), 2);
    ck_assert_uint_eq(hoist__filter_width(HOIST_DTYPE_I32), 4);
    ck_assert_uint_eq(hoist__filter_width(HOIST_DTYPE_C64), 4);
    ck_assert_uint_eq(hoist__filter_width(HOIST_DTYPE_F64), 8);
    ck_assert_uint_eq(hoist__filter_width(HOIST_DTYPE_U8), 0);
    ck_assert_uint_eq(hoist__filter_width(HOIST_DTYPE_F4), 0);
    ck_assert_int_eq(hoist__filter_default(HOIST_DTYPE_F16), HOIST_FILTER_EXPONENT);
    ck_assert_int_eq(hoist__filter_default(HOIST_DTYPE_U16), HOIST_FILTER_PLANES);
    ck_assert_int_eq(hoist__filter_default(HOIST_DTYPE_F8_E4M3), HOIST_FILTER_NONE);
    int f;
    ck_assert_int_eq(hoist_filter_parse("exponent", &f), HOIST_OK);
    ck_assert_int_eq(f, HOIST_FILTER_EXPONENT);
    ck_assert_int_eq(hoist_filter_parse("auto", &f), HOIST_OK);
    ck_assert_int_eq(f, HOIST_FILTER_AUTO);
    ck_assert_int_eq(hoist_filter_parse("shuffle", &f), HOIST_E_INVALID_ARG);
    ck_assert_str_eq(hoist_filter_name(HOIST_FILTER_PLANES), "planes");
    ck_assert_str_eq(hoist_filter_name((hoist_filter)9), "?");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("filter");
    TCase *tc = tcase_create("filter");
    tcase_add_test(tc, test_round_trip_every_width_and_length);
    tcase_add_test(tc, test_exponent_plane_of_bf16);
    tcase_add_test(tc, test_widths_and_defaults);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
