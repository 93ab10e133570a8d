#ifndef DYNAMO_CNCURSES_SHIM_H
#define DYNAMO_CNCURSES_SHIM_H
#include <locale.h>
#include <string.h>
#include <langinfo.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <ncursesw/curses.h>

/* Function-like macros and global variables Swift cannot use directly. */
static inline int dynamo_color_pair(int n) { return (int)COLOR_PAIR(n); }
static inline int dynamo_attr_bold(void) { return (int)A_BOLD; }
static inline int dynamo_attr_dim(void) { return (int)A_DIM; }
static inline int dynamo_attr_reverse(void) { return (int)A_REVERSE; }
static inline int dynamo_attr_underline(void) { return (int)A_UNDERLINE; }
static inline int dynamo_attr_normal(void) { return (int)A_NORMAL; }
static inline WINDOW *dynamo_stdscr(void) { return stdscr; }
static inline int dynamo_lines(void) { return LINES; }
static inline int dynamo_cols(void) { return COLS; }
static inline int dynamo_is_utf8(void) { return strcmp(nl_langinfo(CODESET), "UTF-8") == 0; }
/* The terminal's size now (0 when unknown). */
static inline int dynamo_terminal_size(int *rows, int *cols) {
    struct winsize size;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &size) != 0) return 0;
    *rows = size.ws_row;
    *cols = size.ws_col;
    return size.ws_row > 0 && size.ws_col > 0;
}
#endif
