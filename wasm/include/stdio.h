/* lwIP's mem.c includes <stdio.h> for snprintf in a debug-only path that
 * this build compiles out; nothing here prints. */
#ifndef TCPIP_TS_STDIO_H
#define TCPIP_TS_STDIO_H
#endif
