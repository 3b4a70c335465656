import { inflateSync } from 'node:zlib';

/** A decoded PNG: 8-bit RGBA pixels, row by row. */
export interface Png {
  width: number;
  height: number;
  rgba: Uint8Array;
}

const CHANNELS: Record<number, number> = { 0: 1, 2: 3, 4: 2, 6: 4 };

/**
 * A small PNG decoder for test screenshots: 8-bit greyscale, grey+alpha, RGB or RGBA, not interlaced (what
 * Chromium's screenshots are). Reverses the five scanline filters of the PNG spec.
 */
export function decodePng(buf: Buffer): Png {
  if (buf.readUInt32BE(0) !== 0x89504e47) throw new Error('not a PNG');
  let width = 0;
  let height = 0;
  let channels = 0;
  const idat: Buffer[] = [];
  for (let off = 8; off < buf.length; ) {
    const len = buf.readUInt32BE(off);
    const type = buf.toString('latin1', off + 4, off + 8);
    const data = buf.subarray(off + 8, off + 8 + len);
    if (type === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      if (data[8] !== 8 || data[12] !== 0) throw new Error(`unsupported PNG: bit depth ${data[8]}, interlace ${data[12]}`);
      channels = CHANNELS[data[9]!] ?? 0;
      if (!channels) throw new Error(`unsupported PNG colour type ${data[9]}`);
    } else if (type === 'IDAT') idat.push(data);
    else if (type === 'IEND') break;
    off += 12 + len;
  }
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  const out = new Uint8Array(stride * height);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]!;
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let x = 0; x < stride; x++) {
      const a = x >= channels ? out[y * stride + x - channels]! : 0;
      const b = y > 0 ? out[(y - 1) * stride + x]! : 0;
      const c = x >= channels && y > 0 ? out[(y - 1) * stride + x - channels]! : 0;
      let v = line[x]!;
      if (filter === 1) v += a;
      else if (filter === 2) v += b;
      else if (filter === 3) v += (a + b) >> 1;
      else if (filter === 4) {
        const p = a + b - c;
        const pa = Math.abs(p - a);
        const pb = Math.abs(p - b);
        const pc = Math.abs(p - c);
        v += pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      }
      out[y * stride + x] = v & 0xff;
    }
  }
  const rgba = new Uint8Array(width * height * 4);
  for (let i = 0; i < width * height; i++) {
    const s = out.subarray(i * channels, (i + 1) * channels);
    const [r, g, b, al] = channels >= 3 ? [s[0]!, s[1]!, s[2]!, channels === 4 ? s[3]! : 255] : [s[0]!, s[0]!, s[0]!, channels === 2 ? s[1]! : 255];
    rgba.set([r, g, b, al], i * 4);
  }
  return { width, height, rgba };
}

/** Pixels within `tolerance` (per channel) of `#rrggbb`, optionally inside a box. */
export function countColor(png: Png, hex: string, tolerance = 12, box = { x: 0, y: 0, w: png.width, h: png.height }): number {
  const [r, g, b] = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
  let n = 0;
  for (let y = box.y; y < Math.min(png.height, box.y + box.h); y++) {
    for (let x = box.x; x < Math.min(png.width, box.x + box.w); x++) {
      const i = (y * png.width + x) * 4;
      if (Math.abs(png.rgba[i]! - r!) <= tolerance && Math.abs(png.rgba[i + 1]! - g!) <= tolerance && Math.abs(png.rgba[i + 2]! - b!) <= tolerance) n++;
    }
  }
  return n;
}

/** How many different colours a box holds (a blank area holds one or two). */
export function distinctColors(png: Png, box = { x: 0, y: 0, w: png.width, h: png.height }): number {
  const seen = new Set<number>();
  for (let y = box.y; y < Math.min(png.height, box.y + box.h); y++) {
    for (let x = box.x; x < Math.min(png.width, box.x + box.w); x++) {
      const i = (y * png.width + x) * 4;
      seen.add((png.rgba[i]! << 16) | (png.rgba[i + 1]! << 8) | png.rgba[i + 2]!);
    }
  }
  return seen.size;
}
