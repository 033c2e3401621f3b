/* The progress bar of hoist load and hoist bench: one line on stderr, redrawn in place, showing
 * bytes, GB/s and the time left. Drawn only where a person watches (stderr a terminal) unless
 * forced, so logs and pipes stay clean. */
#ifndef HOIST_PROGRESS_BAR_H
#define HOIST_PROGRESS_BAR_H

#include <stdbool.h>
#include <stdint.h>

typedef enum cli_progress_mode {
    CLI_PROGRESS_AUTO,   /* when stderr is a terminal */
    CLI_PROGRESS_ALWAYS, /* --progress */
    CLI_PROGRESS_NEVER   /* --no-progress */
} cli_progress_mode;

typedef struct cli_progress {
    bool on;
    bool tty;
    char label[112];
    double t0;
} cli_progress;

/* Whether a bar is drawn in this mode: AUTO asks isatty(stderr) (and TERM other than "dumb"). */
bool cli_progress_wanted(cli_progress_mode mode);
/* Starts a bar (on = false makes every call a no-op); label is copied. */
void cli_progress_begin(cli_progress *p, bool on, const char *label);
/* A hoist_progress_fn: user is the cli_progress. */
void cli_progress_cb(uint64_t done, uint64_t total, void *user);
/* Ends the bar: erases it on a terminal, ends its line elsewhere. */
void cli_progress_end(cli_progress *p);

#endif
