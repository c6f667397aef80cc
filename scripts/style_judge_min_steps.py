"""How many updates does the bench's style judge need on a small corpus? Builds the small import
docs/bench.md quotes: the first 200 train and 60 test paintings of a workspace's corpus, saved
as 96 px JPEGs in one folder per style, imported by `artgen data import` (content-hash split),
then trains the judge at each `StyleJudgeConfig.min_steps` and scores it on the imported test
paintings.

    python scripts/style_judge_min_steps.py --workdir W [--min-steps 0,200,500,1000]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from PIL import Image

from artgen.data.corpus import decode_image, load_corpus
from artgen.data.importer import import_paintings
from artgen.workspace import Workspace
from bench.style import StyleJudgeConfig, train_style_judge


def style_folders(data_dir: Path, out: Path, n_train: int = 200, n_test: int = 60) -> int:
    dd = load_corpus(data_dir)
    n = 0
    for split, count in (("train", n_train), ("test", n_test)):
        for row in dd[split].select(range(min(count, len(dd[split])))):
            folder = out / row["style"].replace("_", " ").title()
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(decode_image(row["image"])).resize((96, 96)).save(folder / f"{row['id']}.jpg", quality=92)
            n += 1
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--min-steps", default="0,200,500,1000")
    args = ap.parse_args()
    ws = Workspace.resolve(args.workdir)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        n = style_folders(ws.data, tmp / "paintings")
        report = import_paintings(str(tmp / "paintings"), tmp / "data", tmp / "import.log", size=64, show_progress=False)
        dd = load_corpus(tmp / "data")
        train = [decode_image(x) for x in dd["train"]["image"]]
        test = [decode_image(x) for x in dd["test"]["image"]]
        print(f"{n} paintings in {len(set(dd['train']['style']))} style folders: {report.train} train, {report.test} test")
        print("| min_steps | updates | seconds | accuracy on the test paintings | chance |")
        print("|---|---|---|---|---|")
        for min_steps in (int(x) for x in args.min_steps.split(",")):
            judge = train_style_judge(train, dd["train"]["style"], StyleJudgeConfig(min_steps=min_steps))
            v = judge.validate(test, dd["test"]["style"])
            print(f"| {min_steps} | {judge.info['updates']} | {judge.info['train_seconds']} | {v['accuracy']:.3f} | {v['chance']:.3f} |")


if __name__ == "__main__":
    main()
