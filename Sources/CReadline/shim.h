#ifndef DYNAMO_CREADLINE_SHIM_H
#define DYNAMO_CREADLINE_SHIM_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <readline/readline.h>
#include <readline/history.h>

/* readline's state lives in global variables; Swift 6 refuses to touch shared mutable
   globals, so these accessors are the one door to them (used from one thread only). */

static inline const char *dynamo_rl_line(void) { return rl_line_buffer ? rl_line_buffer : ""; }
static inline int dynamo_rl_point(void) { return rl_point; }
static inline int dynamo_rl_end(void) { return rl_end; }
/* The prompt readline shows now: ours, or `(reverse-i-search)`...' while Ctrl-R searches. */
static inline const char *dynamo_rl_display_prompt(void) { return rl_display_prompt ? rl_display_prompt : ""; }
static inline const char *dynamo_rl_prompt(void) { return rl_prompt ? rl_prompt : ""; }
/* Empties the line being edited (Ctrl-C at the prompt, as a shell does). */
static inline void dynamo_rl_clear_line(void) {
    rl_replace_line("", 0);
    rl_point = 0;
    rl_mark = 0;
}

/* Completion: `matches` gets the text being completed and where it starts in the line,
   and returns a NULL-terminated array (as rl_completion_matches does). */
static inline void dynamo_rl_set_completion(rl_completion_func_t *matches) {
    rl_readline_name = "dynamo";
    rl_attempted_completion_function = matches;
}
static inline void dynamo_rl_no_default_completion(void) { rl_attempted_completion_over = 1; }

/* Callback mode inside an ncurses screen: readline does not touch the terminal, reads
   keys from `getc`, and draws through `redisplay`. */
static inline void dynamo_rl_embed(
    rl_getc_func_t *getc, rl_hook_func_t *available, rl_voidfunc_t *redisplay, rl_compdisp_func_t *show_matches) {
    rl_catch_signals = 0;
    rl_catch_sigwinch = 0;
    rl_prep_term_function = NULL;
    rl_deprep_term_function = NULL;
    rl_change_environment = 0;
    rl_outstream = fopen("/dev/null", "w");
    rl_getc_function = getc;
    rl_input_available_hook = available;
    rl_redisplay_function = redisplay;
    rl_completion_display_matches_hook = show_matches;
    rl_variable_bind("bell-style", "none");
}
#endif
