// Prints docs/ERRORS.md from the code registry: `npx tsx scripts/error-codes.ts > docs/ERRORS.md`.
// test/ship/error-codes.test.ts fails when the file and the registry disagree.
import { renderCodeReference } from "../src/error-codes.js";

process.stdout.write(renderCodeReference());
