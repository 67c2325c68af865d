/*
 * What a fork costs on this machine, piece by piece: the CPU of fork +
 * child _exit + waitpid (parent and child, from getrusage) for this small
 * process as it is (the baseline), then with one thing added at a time:
 *
 *   regions   100 more memory regions, each with one page written (the
 *             zygote's libraries: every one adds 4 to 6 regions);
 *   resident  1,000 more pages written in the parent (its heap and data);
 *   cow       the child writes 64 of those pages (each a copy-on-write
 *             fault: the zygote's heap pages a worker writes);
 *   fresh     the child maps 64 new pages and writes them (zero-filled
 *             faults: a worker's own new memory).
 *
 * Each is run in rounds alternated with the baseline, so both see the same
 * machine; the report gives the median of the rounds' differences, per
 * region or per page. docs/bench.md ("What a fork costs") explains why.
 *
 * usage: serve_forkslope [ROUNDS]   (default 9 rounds of 400 forks)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define FORKS 400
#define REGIONS 100
#define RESIDENT 1000
#define TOUCHED 64

enum { BASE, REGIONS_, RESIDENT_, COW, FRESH, NSTATES };
static const char *const names[NSTATES] = {"baseline", "regions", "resident",
                                           "cow", "fresh"};

static long page;
static char *resident; /* RESIDENT pages, written */

static double cpu_us(void) {
    struct rusage s, c;
    getrusage(RUSAGE_SELF, &s);
    getrusage(RUSAGE_CHILDREN, &c);
    return (s.ru_utime.tv_sec + s.ru_stime.tv_sec + c.ru_utime.tv_sec +
            c.ru_stime.tv_sec) *
               1e6 +
           s.ru_utime.tv_usec + s.ru_stime.tv_usec + c.ru_utime.tv_usec +
           c.ru_stime.tv_usec;
}

/* CPU per fork + exit + reap; the child does what state says. */
static double round_of(int state) {
    double t0 = cpu_us();
    for (int i = 0; i < FORKS; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            if (state == COW)
                for (int k = 0; k < TOUCHED; k++)
                    resident[k * page] = 2;
            if (state == FRESH) {
                char *p = mmap(NULL, TOUCHED * page, PROT_READ | PROT_WRITE,
                               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
                for (int k = 0; p != MAP_FAILED && k < TOUCHED; k++)
                    p[k * page] = 2;
            }
            _exit(0);
        }
        if (pid < 0) {
            perror("fork");
            exit(1);
        }
        waitpid(pid, NULL, 0);
    }
    return (cpu_us() - t0) / FORKS;
}

static char *regions[REGIONS];

/* Adds (on) or removes what state adds to the parent. */
static void setup(int state, int on) {
    if (state == REGIONS_) {
        for (int i = 0; i < REGIONS; i++) {
            if (!on) {
                munmap(regions[i], 2 * page);
                continue;
            }
            /* Two pages of different protections: never merged with a
             * neighbour, so each call adds regions of its own. */
            regions[i] = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE,
                              MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (regions[i] == MAP_FAILED) {
                perror("mmap");
                exit(1);
            }
            regions[i][0] = 1;
            mprotect(regions[i] + page, page, PROT_READ);
        }
    }
    if (state == RESIDENT_ || state == COW) {
        if (on) {
            resident = mmap(NULL, RESIDENT * page, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (resident == MAP_FAILED) {
                perror("mmap");
                exit(1);
            }
            for (int k = 0; k < RESIDENT; k++)
                resident[k * page] = 1;
        } else {
            munmap(resident, RESIDENT * page);
        }
    }
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 9;
    if (rounds < 1 || rounds > 1000) {
        fprintf(stderr, "usage: serve_forkslope [ROUNDS (1-1000)]\n");
        return 2;
    }
    page = sysconf(_SC_PAGESIZE);
    double base[NSTATES];
    double *diff = calloc((size_t)rounds, sizeof(double));
    double *b = calloc((size_t)rounds, sizeof(double));
    if (!diff || !b)
        return 1;
    for (int s = BASE; s < NSTATES; s++) {
        for (int r = 0; r < rounds; r++) {
            /* COW: the resident pages are in its reference round too, so
             * that only the child's writes differ. */
            int added = s == COW ? RESIDENT_ : s;
            if (s == COW)
                setup(added, 1);
            b[r] = round_of(BASE);
            if (s == BASE) {
                diff[r] = 0;
                continue;
            }
            if (s != COW)
                setup(added, 1);
            diff[r] = round_of(s) - b[r];
            setup(added, 0);
        }
        qsort(b, (size_t)rounds, sizeof(double), cmp);
        qsort(diff, (size_t)rounds, sizeof(double), cmp);
        base[s] = b[rounds / 2];
        double d = diff[rounds / 2];
        int per = s == REGIONS_    ? 2 * REGIONS
                  : s == RESIDENT_ ? RESIDENT
                  : s == BASE      ? 1
                                   : TOUCHED;
        if (s == BASE)
            printf("forkslope.baseline: cpu_us_per_fork=%.1f rounds=%d "
                   "forks_per_round=%d\n",
                   base[s], rounds, FORKS);
        else
            printf("forkslope.%s: added_us_per_fork=%.1f per=%d "
                   "us_each=%.3f baseline_us=%.1f\n",
                   names[s], d, per, d / per, base[s]);
    }
    free(diff);
    free(b);
    return 0;
}
