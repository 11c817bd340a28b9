// The web UI's page files (and its layout thread) are served as they are (no bundler): the build copies them next to the
// compiled server, which reads them relative to itself (src/ui/assets -> dist/ui/assets).
import { cpSync } from 'node:fs';

cpSync(new URL('../src/ui/assets/', import.meta.url), new URL('../dist/ui/assets/', import.meta.url), { recursive: true });
// The ELK layout thread (plain JavaScript, see src/ui/elk-thread.mjs).
cpSync(new URL('../src/ui/elk-thread.mjs', import.meta.url), new URL('../dist/ui/elk-thread.mjs', import.meta.url));
