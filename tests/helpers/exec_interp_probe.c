/* A program that says it ran: built with --dynamic-linker=PATH, its loader
 * is PATH (tests/test_exec_interpreter.py). */
#include <stdio.h>

int main(void)
{
    puts("ELF-RAN");
    return 0;
}
