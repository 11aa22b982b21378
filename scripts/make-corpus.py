# Regenerates examples/data/kjv.txt.gz, the demo's training text: the King James Bible (public domain)
# from Debian's bible-kjv package (`apt-get install bible-kjv`), Genesis onwards up to the first chapter
# break after 1,000,000 characters, one verse per line, a blank line between chapters, no verse numbers.
import gzip, re, subprocess

raw = subprocess.run(['bible', 'Genesis1:1-Revelation22:21'], capture_output=True, text=True, check=True).stdout
out, verse = [], None
for line in raw.split('\n'):
    if re.match(r'^[1-3]? ?[A-Z][A-Za-z ]+ \d+$', line.strip()) and not line.startswith(' '):
        if verse: out.append(verse)
        verse = None
        out.append('')
        continue
    m = re.match(r'^\s+\d+ (.*)$', line)
    if m:
        if verse: out.append(verse)
        verse = m.group(1)
    elif line.strip():
        verse = f'{verse} {line.strip()}' if verse else line.strip()
if verse: out.append(verse)
text = re.sub(r'\n{3,}', '\n\n', '\n'.join(out)).strip() + '\n'
cut = text.find('\n\n', 1_000_000)
with gzip.GzipFile('examples/data/kjv.txt.gz', 'wb', mtime=0) as f:
    f.write((text[:cut] + '\n').encode())
