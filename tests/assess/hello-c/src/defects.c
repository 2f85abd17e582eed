/* Known defects for the assessment tests: cppcheck must find each one. */
#include <stdlib.h>

int first_char(void)
{
    char *p = NULL;
    return *p;                /* nullPointer */
}

void fill(void)
{
    char buf[8];
    buf[8] = 'x';             /* arrayIndexOutOfBounds */
}

int keep(void)
{
    char *q = malloc(16);
    if (q == NULL)
        return -1;
    q[0] = 1;
    return 0;                 /* memleak: q */
}
