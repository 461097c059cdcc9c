#!/usr/bin/env node
// Entry point of the `leasehold` command. Node 24 runs the TypeScript sources directly.
import { main } from '../src/cli/main.ts';

await main(process.argv);
