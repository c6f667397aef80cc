// The expected values tests/test_web.py computes with numpy, sentencepiece and the Python
// runtime, read from the JSON file named by ARTGEN_WEB_FIXTURES. Run these tests through
// pytest (tests/test_web.py), which writes that file; alone, they skip.
import fs from "node:fs";

const path = process.env.ARTGEN_WEB_FIXTURES;
export const fixtures = path ? JSON.parse(fs.readFileSync(path, "utf8")) : null;
export const skip = fixtures ? false : "ARTGEN_WEB_FIXTURES is not set: run through pytest tests/test_web.py";
