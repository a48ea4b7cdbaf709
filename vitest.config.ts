import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Two cores: run files two at a time; bulk transfers are CPU-bound.
    maxWorkers: 2,
    minWorkers: 1,
    testTimeout: 30_000,
  },
});
