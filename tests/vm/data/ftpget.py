#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
# ftpget.py HOST passive|active FILE: downloads FILE anonymously with Python's ftplib (PASV or
# PORT) and prints its content.
import ftplib
import sys

host, mode, name = sys.argv[1], sys.argv[2], sys.argv[3]
ftp = ftplib.FTP(host, timeout=30)
ftp.login()
ftp.set_pasv(mode == "passive")
chunks = []
ftp.retrbinary("RETR " + name, chunks.append)
ftp.quit()
sys.stdout.write(b"".join(chunks).decode())
