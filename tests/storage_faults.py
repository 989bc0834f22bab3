"""Making a folder refuse writes for a while, as a read-only remount or a permissions slip would.

Root ignores permission bits, so as root the folder is made immutable (`chattr +i`: even root
gets EPERM); otherwise its write bit is taken away (EACCES).
"""

import os
import shutil
import subprocess
from pathlib import Path


def can_make_unwritable() -> bool:
    """Whether this process can make a folder refuse writes."""
    return os.geteuid() != 0 or shutil.which("chattr") is not None


def set_writable(folder: Path, writable: bool) -> None:
    """Let `folder` take new entries again, or refuse them."""
    if os.geteuid() == 0:
        flag = "-i" if writable else "+i"
        subprocess.run(["chattr", flag, str(folder)], check=True, capture_output=True)
    else:
        folder.chmod(0o755 if writable else 0o555)
