/* loader/error.c and util.c: the status X-macro, per-thread messages, logging, versions. */
#include "testutil.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

START_TEST(test_every_status_has_name_and_text)
{
    int seen = 0;
#define X(name, value, desc)                                                                      \
    ck_assert_str_eq(hoist_status_name(value), #name);                                            \
    ck_assert_str_eq(hoist_strerror(value), desc);                                                \
    ck_assert_int_le(value, 0);                                                                   \
    seen++;
    HOIST_STATUS_LIST(X)
#undef X
    ck_assert_int_gt(seen, 30);
    ck_assert_str_eq(hoist_status_name(-9999), "HOIST_E_UNKNOWN");
    ck_assert_str_eq(hoist_strerror(42), "unknown status");
}
END_TEST

START_TEST(test_dtype_table)
{
    ck_assert_str_eq(hoist_dtype_name(HOIST_DTYPE_BF16), "BF16");
    ck_assert_uint_eq(hoist_dtype_bits(HOIST_DTYPE_F4), 4);
    ck_assert_uint_eq(hoist_dtype_bits(HOIST_DTYPE_C64), 64);
    ck_assert_str_eq(hoist_dtype_name((hoist_dtype)999), "?");
    ck_assert_uint_eq(hoist_dtype_bits((hoist_dtype)999), 0);
}
END_TEST

START_TEST(test_version)
{
    ck_assert_uint_eq(hoist_version_number(), HOIST_VERSION_NUMBER);
    char want[32];
    snprintf(want, sizeof want, "%d.%d.%d", HOIST_VERSION_MAJOR, HOIST_VERSION_MINOR,
             HOIST_VERSION_PATCH);
    ck_assert_str_eq(hoist_version(), want);
}
END_TEST

/* A failure leaves a message naming the file; a later success on the thread clears it. */
START_TEST(test_message_names_file_then_clears)
{
    hoist_model *m = (hoist_model *)1;
    ck_assert_int_eq(hoist_model_open("/nonexistent/x.safetensors", NULL, &m), HOIST_E_OPEN);
    ck_assert_ptr_null(m);
    ck_assert_ptr_nonnull(strstr(hoist_last_error(), "/nonexistent/x.safetensors"));
    char *dir = tu_mkdtemp(), *p = tu_path(dir, "ok.safetensors");
    tu_write_safetensors(p, "{}", NULL, 0);
    ck_assert_int_eq(hoist_model_open(p, NULL, &m), HOIST_OK);
    ck_assert_str_eq(hoist_last_error(), "");
    hoist_model_free(m);
    free(p);
    tu_rmtree(dir);
}
END_TEST

static void *fail_in_thread(void *arg)
{
    hoist_model *m;
    hoist_model_open("/nonexistent/other.safetensors", NULL, &m);
    return strstr(hoist_last_error(), "other.safetensors") ? arg : NULL;
}

/* Messages are per thread: another thread's failure does not overwrite this one's. */
START_TEST(test_message_is_per_thread)
{
    hoist_model *m;
    hoist_model_open("/nonexistent/mine.safetensors", NULL, &m);
    static int marker;
    pthread_t t;
    void *res;
    ck_assert_int_eq(pthread_create(&t, NULL, fail_in_thread, &marker), 0);
    pthread_join(t, &res);
    ck_assert_ptr_eq(res, &marker);
    ck_assert_ptr_nonnull(strstr(hoist_last_error(), "mine.safetensors"));
}
END_TEST

static int warnings;
static char last_line[1024];
static void count_warnings(hoist_log_level level, const char *msg, void *user)
{
    if (level == HOIST_LOG_WARN) warnings++;
    snprintf(last_line, sizeof last_line, "%s", msg);
    ck_assert_ptr_eq(user, &warnings);
}

/* Lenient mode reports trailing bytes through the log callback, not stdout. */
START_TEST(test_log_callback_receives_warnings)
{
    char *dir = tu_mkdtemp(), *p = tu_path(dir, "trailing.safetensors");
    const char hdr[] = "{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]}}";
    tu_write_safetensors(p, hdr, "abcd", 4);
    hoist_set_log_callback(count_warnings, &warnings, HOIST_LOG_DEBUG);
    hoist_open_options o = HOIST_OPEN_OPTIONS_DEFAULT;
    hoist_model *m;
    ck_assert_int_eq(hoist_model_open(p, &o, &m), HOIST_E_TRAILING_BYTES);
    ck_assert_int_eq(warnings, 0);
    o.strict = 0;
    ck_assert_int_eq(hoist_model_open(p, &o, &m), HOIST_OK);
    ck_assert_int_eq(warnings, 1);
    ck_assert_ptr_nonnull(strstr(last_line, "trailing.safetensors"));
    hoist_set_log_callback(NULL, NULL, HOIST_LOG_ERROR);
    hoist_model_free(m);
    free(p);
    tu_rmtree(dir);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("error");
    TCase *tc = tcase_create("status");
    tcase_add_test(tc, test_every_status_has_name_and_text);
    tcase_add_test(tc, test_dtype_table);
    tcase_add_test(tc, test_version);
    tcase_add_test(tc, test_message_names_file_then_clears);
    tcase_add_test(tc, test_message_is_per_thread);
    tcase_add_test(tc, test_log_callback_receives_warnings);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
