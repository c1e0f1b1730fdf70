// Training metrics files: one record per step or evaluation, as JSON lines (.jsonl) or CSV (.csv).
// Each record is written with a synchronous write as it comes, so a crash loses nothing already logged;
// a resumed run drops the records past its checkpoint and appends, so the file reads as one clean run.
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { dirname, extname } from 'node:path';
import process from 'node:process';
import { TensorloomError } from '../core/errors.js';

/** A metrics value: numbers, strings and booleans; null (or a missing key) is an empty CSV cell. */
export type MetricValue = number | string | boolean | null;

/** One metrics record (a step or an eval); a numeric `step` key lets resume trim the file. */
export type MetricRecord = Readonly<Record<string, MetricValue>>;

/** An open metrics file. */
export interface MetricsWriter {
  /** The file being written. */
  readonly path: string;
  /** Appends one record (written through to the file at once). */
  write(record: MetricRecord): void;
  /** Closes the file; later writes are errors. */
  close(): void;
}

/** How to open a metrics file. */
export interface MetricsOptions {
  /**
   * The CSV columns, in order (default: the first record's keys). A record may leave columns out
   * (empty cells) but a key outside them is an error, since CSV cannot grow a column mid-file.
   */
  columns?: readonly string[];
  /**
   * Continue an existing file (a resumed run): its records for which `keep` is false (those written after
   * the checkpoint by the run that crashed) are dropped, then new records are appended. Without it an
   * existing file is replaced.
   */
  keep?: (record: Readonly<Record<string, unknown>>) => boolean;
}

function csvCell(v: MetricValue | undefined): string {
  if (v === null || v === undefined) return '';
  const s = String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** The cells of one CSV row (RFC 4180 quoting); numeric-looking cells become numbers. */
function csvRow(line: string): (string | number)[] {
  const cells: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quoted && c === '"' && line[i + 1] === '"') {
      cur += '"';
      i++;
    } else if (c === '"') {
      quoted = !quoted;
    } else if (c === ',' && !quoted) {
      cells.push(cur);
      cur = '';
    } else {
      cur += c;
    }
  }
  cells.push(cur);
  return cells.map((v) => (v !== '' && Number.isFinite(Number(v)) ? Number(v) : v));
}

/** The header and record lines of an existing file that `keep` accepts (torn or unreadable lines are dropped). */
function keptLines(
  path: string,
  csv: boolean,
  keep: (r: Readonly<Record<string, unknown>>) => boolean,
): { header?: string; lines: string[] } {
  const lines = readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '');
  if (csv) {
    const [header, ...rows] = lines;
    if (header === undefined) return { lines: [] };
    const cols = header.split(',');
    const record = (row: string) => Object.fromEntries(csvRow(row).map((v, i) => [cols[i] ?? `${i}`, v]));
    return { header, lines: rows.filter((r) => csvRow(r).length === cols.length && keep(record(r))) };
  }
  return {
    lines: lines.filter((l) => {
      try {
        return keep(JSON.parse(l) as Record<string, unknown>);
      } catch {
        return false; // a line torn by a crash mid-write
      }
    }),
  };
}

/** The format of metrics file `path` by its extension; anything but .jsonl or .csv is an error naming it. */
export function metricsFormat(path: string): 'jsonl' | 'csv' {
  const ext = extname(path).toLowerCase();
  if (ext !== '.jsonl' && ext !== '.csv')
    throw new TensorloomError(
      `--metrics: ${path} must end in .jsonl (JSON lines) or .csv, got '${ext || 'no extension'}'`,
    );
  return ext === '.csv' ? 'csv' : 'jsonl';
}

/**
 * Opens `path` for metrics: `.jsonl` (one JSON object per line) or `.csv` (a header row, then one
 * row per record). The folder is created if needed. Throws a TensorloomError for another extension,
 * or (with `keep`) an existing CSV whose header differs from `columns`.
 */
export function openMetrics(path: string, opts: MetricsOptions = {}): MetricsWriter {
  const csv = metricsFormat(path) === 'csv';
  let columns = opts.columns ? [...opts.columns] : undefined;
  mkdirSync(dirname(path), { recursive: true });

  let pending = '';
  if (opts.keep && existsSync(path)) {
    const kept = keptLines(path, csv, opts.keep);
    if (csv && kept.header !== undefined) {
      const old = kept.header.split(',');
      if (columns && old.join(',') !== columns.join(','))
        throw new TensorloomError(
          `--metrics: ${path} has columns ${old.join(',')} but this run writes ${columns.join(',')}; use another file`,
        );
      columns = old;
      pending = `${kept.header}\n`;
    }
    pending += kept.lines.map((l) => `${l}\n`).join('');
  }
  // rewrite what is kept in one atomic step, then append: a crash in between loses nothing
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, pending);
  renameSync(tmp, path);
  let fd: number | undefined = openSync(path, 'a');
  let wroteHeader = csv && pending !== '';

  const put = (line: string): void => {
    if (fd === undefined) throw new TensorloomError(`metrics file ${path} is closed`);
    writeSync(fd, line);
  };
  return {
    path,
    write(record: MetricRecord): void {
      if (!csv) {
        put(`${JSON.stringify(record)}\n`);
        return;
      }
      columns ??= Object.keys(record);
      for (const k of Object.keys(record)) {
        if (!columns.includes(k))
          throw new TensorloomError(`metrics file ${path}: column '${k}' is not among ${columns.join(',')}`);
      }
      if (!wroteHeader) {
        put(`${columns.join(',')}\n`);
        wroteHeader = true;
      }
      put(`${columns.map((c) => csvCell(record[c])).join(',')}\n`);
    },
    close(): void {
      if (fd !== undefined) closeSync(fd);
      fd = undefined;
    },
  };
}
