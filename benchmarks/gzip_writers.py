"""Seconds to gzip a decoded run's NIfTI bytes: the standard library against python-isal.

    python benchmarks/gzip_writers.py RUN.nii

Level 1 (what ``io.gzip_writer`` uses), written in 1 MiB pieces as
``io.write_volumes`` does; prints seconds and output bytes for each writer.
"""

import gzip
import os
import sys
import tempfile
import time


def main(path):
    from isal import igzip, igzip_threaded

    raw = open(path, "rb").read()
    step = 1 << 20
    writers = {
        "gzip (zlib) level 1": lambda fh: gzip.GzipFile(fileobj=fh, mode="wb", compresslevel=1,
                                                          mtime=0),
        "isal level 1": lambda fh: igzip.IGzipFile(fileobj=fh, mode="wb", compresslevel=1,
                                                   mtime=0),
        "isal level 1, 2 threads": lambda fh: igzip_threaded.open(fh, "wb", compresslevel=1,
                                                                  threads=2),
    }
    print(f"{path}: {len(raw):,} bytes")
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "x.gz")
        for name, make in writers.items():
            start = time.perf_counter()
            with open(out, "wb") as fh:
                sink = make(fh)
                for i in range(0, len(raw), step):
                    sink.write(raw[i:i + step])
                sink.close()
            print(f"| {name} | {time.perf_counter() - start:.2f} s | {os.path.getsize(out):,} B |")


if __name__ == "__main__":
    main(sys.argv[1])
