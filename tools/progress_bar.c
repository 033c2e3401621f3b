/* The CLI's progress bar (see progress_bar.h). */
#include "progress_bar.h"

#include "cli_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BAR_WIDTH 24

bool cli_progress_wanted(cli_progress_mode mode)
{
    if (mode != CLI_PROGRESS_AUTO) return mode == CLI_PROGRESS_ALWAYS;
    const char *term = getenv("TERM");
    return isatty(STDERR_FILENO) && !(term && strcmp(term, "dumb") == 0);
}

void cli_progress_begin(cli_progress *p, bool on, const char *label)
{
    p->on = on;
    p->tty = on && isatty(STDERR_FILENO);
    snprintf(p->label, sizeof p->label, "%s", label ? label : "");
    p->t0 = cli_now();
}

static void fmt_eta(double s, char *buf, size_t len)
{
    if (!(s >= 0) || s > 359999)
        snprintf(buf, len, "--:--");
    else if (s >= 3600)
        snprintf(buf, len, "%d:%02d:%02d", (int)s / 3600, (int)s / 60 % 60, (int)s % 60);
    else
        snprintf(buf, len, "%d:%02d", (int)s / 60, (int)s % 60);
}

void cli_progress_cb(uint64_t done, uint64_t total, void *user)
{
    cli_progress *p = user;
    if (!p || !p->on) return;
    double frac = total ? (double)done / (double)total : 1.0;
    if (frac > 1) frac = 1;
    double secs = cli_now() - p->t0;
    double rate = secs > 0 ? (double)done / secs : 0; /* bytes per second */
    char bar[BAR_WIDTH + 1], eta[16];
    int fill = (int)(frac * BAR_WIDTH + 0.5);
    for (int i = 0; i < BAR_WIDTH; i++) bar[i] = i < fill ? '#' : '.';
    bar[BAR_WIDTH] = '\0';
    fmt_eta(rate > 0 ? (double)(total - (done < total ? done : total)) / rate : -1, eta,
            sizeof eta);
    /* \033[K clears what a longer previous line left on a terminal */
    fprintf(stderr, "\r%s%s[%s] %5.1f%%  %.2f/%.2f GB  %.2f GB/s  ETA %s%s", p->label,
            *p->label ? " " : "", bar, frac * 100, (double)done / 1e9, (double)total / 1e9,
            rate / 1e9, eta, p->tty ? "\033[K" : "");
    fflush(stderr);
}

void cli_progress_end(cli_progress *p)
{
    if (!p->on) return;
    fputs(p->tty ? "\r\033[K" : "\n", stderr);
    fflush(stderr);
    p->on = false;
}
