// How scratchd is started in production (debian/scratchd.sh, `npm start`):
// every benchmark that runs scratchd starts it the same way (docs/decisions.md,
// "scratchd runs with --max-semi-space-size=2 --v8-pool-size=1
// and MALLOC_ARENA_MAX=2").
export const scratchdFlags = ['--max-semi-space-size=2', '--v8-pool-size=1'];
export const scratchdEnv = { MALLOC_ARENA_MAX: '2' };
