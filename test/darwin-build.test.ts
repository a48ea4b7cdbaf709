// vmnet is at least compiled: no Mac is available, so every run checks that
// the addon's macOS sources compile for arm64 and x86_64 macOS against
// declarations written from Apple's documentation (native/test/darwin-sdk).
// vmnet itself is untested on a Mac.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const script = fileURLToPath(new URL('../scripts/check-darwin.sh', import.meta.url));

describe('macOS build (syntax only)', () => {
  it('vmnet_darwin.c and the shared files it uses compile for arm64-apple-macos13 and x86_64-apple-macos13', async () => {
    const { stdout } = await run('bash', [script], { timeout: 60_000 });
    expect(stdout).toContain('compile for arm64-apple-macos13');
    expect(stdout).toContain('compile for x86_64-apple-macos13');
  });
});
