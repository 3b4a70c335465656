/**
 * Preload (`node --import`) for tests: the disk fills up while one file is written. Writes through a FileHandle
 * to the file named by KLAVIYO_ETL_TEST_FULL_FILE succeed for the first KLAVIYO_ETL_TEST_FULL_AFTER bytes; the
 * write that crosses that limit is cut short (it reports fewer bytes written, as write(2) does when the disk
 * fills up), and every later write fails with ENOSPC. Other files are untouched. Linux (/proc/self/fd).
 */
import { readlinkSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { resolve } from 'node:path';

const target = process.env.KLAVIYO_ETL_TEST_FULL_FILE ? resolve(process.env.KLAVIYO_ETL_TEST_FULL_FILE) : undefined;
let room = Number(process.env.KLAVIYO_ETL_TEST_FULL_AFTER ?? 0);

if (target) {
  const probe = await open(process.execPath, 'r');
  const proto = Object.getPrototypeOf(probe);
  await probe.close();
  const write = proto.write;
  const isTarget = (handle) => {
    try {
      return readlinkSync(`/proc/self/fd/${handle.fd}`) === target;
    } catch {
      return false;
    }
  };
  proto.write = async function (data, ...rest) {
    if (!isTarget(this)) return write.call(this, data, ...rest);
    let buffer;
    let offset = 0;
    let length;
    if (typeof data === 'string') {
      buffer = Buffer.from(data, typeof rest[1] === 'string' ? rest[1] : 'utf8');
      length = buffer.length;
    } else {
      buffer = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
      offset = typeof rest[0] === 'number' ? rest[0] : 0;
      length = typeof rest[1] === 'number' ? rest[1] : buffer.length - offset;
    }
    if (room <= 0) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', errno: -28, syscall: 'write' });
    const n = Math.min(room, length);
    room -= n;
    const result = await write.call(this, buffer, offset, n);
    return { bytesWritten: result.bytesWritten, buffer: data };
  };
}
