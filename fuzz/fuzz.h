/* fuzz - what the libFuzzer harnesses in fuzz/ share.
 *
 * Each harness is one program, fuzz-NAME.c, built by fuzz.sh with clang and
 * -fsanitize=fuzzer,address,undefined. libFuzzer calls
 * LLVMFuzzerInitialize() once and LLVMFuzzerTestOneInput() for every input;
 * a broken invariant panics (mq_log_panic(), so abort()), which libFuzzer
 * reports as a crash and saves the input.
 *
 * fuzz_init(): quiet logging (errors and panics are still printed).
 * fuzz_check_shown(): panics unless s is text fit to show a person, as
 * mq_log_sanitize() promises: valid UTF-8, at most max bytes, no control
 * characters, no bidi or line-separator characters.
 */
#ifndef MQSCAN_FUZZ_H
#define MQSCAN_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

void fuzz_init(void);
void fuzz_check_shown(const char *what, const char *s, size_t max);

#endif
