#include <stdio.h>

int first_char(void);
void fill(void);
int keep(void);

int main(void)
{
    fill();
    printf("%d %d\n", keep(), first_char());
    return 0;
}
