/*
 * PDQ perceptual hashing in the browser, so a person can fingerprint their own images without the
 * images ever leaving their device. Only the 64-hex-character hashes are put in the form.
 *
 * A port of hashing/pdq.py (itself Meta's reference, facebook/ThreatExchange pdq/cpp): BT.601 luma,
 * two rounds of Jarosz box filters, 64x64 decimation at pixel centres, a 16x16 DCT-II block without
 * the DC row/column, bits above the median. Arithmetic is kept in float32 (Math.fround) in the same
 * order as the server, so both give the same bits up to differences in image decoding.
 * No dependencies, no network access.
 */
(function (global) {
  "use strict";
  var SIZE = 64, DCT = 16, PASSES = 2, MIN_DIM = 5;
  var f = Math.fround;

  function luma(rgba, w, h) {
    var out = new Float32Array(w * h);
    for (var i = 0, p = 0; i < w * h; i++, p += 4) {
      out[i] = rgba[p] * 0.299 + rgba[p + 1] * 0.587 + rgba[p + 2] * 0.114;
    }
    return out;
  }

  function boxWindow(length) { return Math.floor((length + 2 * SIZE - 1) / (2 * SIZE)); }

  // Moving average along one line (start, stride, length), as box1DFloat / hashing.pdq._box_filter.
  function box1d(src, dst, start, stride, length, window) {
    var half = (window + 2) >> 1, behind = window - half, ahead = half - 1;
    var total = 0, count = 0, k;
    for (k = 0; k < Math.min(ahead, length); k++) { total = f(total + src[start + k * stride]); count++; }
    for (k = 0; k < length; k++) {
      var entering = k + ahead, leaving = k - behind - 1;
      if (entering < length) { total = f(total + src[start + entering * stride]); count++; }
      if (leaving >= 0) { total = f(total - src[start + leaving * stride]); count--; }
      dst[start + k * stride] = f(total / count);
    }
  }

  function downsample(lum, w, h) {
    var r, c, s, t;
    if (w === SIZE && h === SIZE) return lum;
    var rowWindow = boxWindow(w), colWindow = boxWindow(h);
    var a = lum, b = new Float32Array(w * h);
    for (var pass = 0; pass < PASSES; pass++) {
      for (r = 0; r < h; r++) box1d(a, b, r * w, 1, w, rowWindow);   // along each row
      for (c = 0; c < w; c++) box1d(b, a, c, w, h, colWindow);       // down each column
    }
    var out = new Float32Array(SIZE * SIZE);
    for (s = 0; s < SIZE; s++) {
      var row = Math.floor((s + 0.5) * h / SIZE);
      for (t = 0; t < SIZE; t++) out[s * SIZE + t] = a[row * w + Math.floor((t + 0.5) * w / SIZE)];
    }
    return out;
  }

  var dctMatrix = null;
  function matrix() {
    if (dctMatrix) return dctMatrix;
    dctMatrix = new Float32Array(DCT * SIZE);
    var scale = f(Math.sqrt(2 / SIZE));
    for (var i = 0; i < DCT; i++) {
      for (var k = 0; k < SIZE; k++) dctMatrix[i * SIZE + k] = scale * Math.cos(Math.PI / 2 / SIZE * (i + 1) * (2 * k + 1));
    }
    return dctMatrix;
  }

  function dct16(block) {
    var d = matrix(), i, j, k;
    var partial = new Float32Array(DCT * SIZE), out = new Float32Array(DCT * DCT);
    for (k = 0; k < SIZE; k++) {
      for (i = 0; i < DCT; i++) {
        var dik = d[i * SIZE + k];
        for (j = 0; j < SIZE; j++) partial[i * SIZE + j] = f(partial[i * SIZE + j] + f(dik * block[k * SIZE + j]));
      }
    }
    for (k = 0; k < SIZE; k++) {
      for (i = 0; i < DCT; i++) {
        var pik = partial[i * SIZE + k];
        for (j = 0; j < DCT; j++) out[i * DCT + j] = f(out[i * DCT + j] + f(pik * d[j * SIZE + k]));
      }
    }
    return out;
  }

  function quality(block) {
    var sum = 0, i, j;
    for (i = 0; i < SIZE - 1; i++) for (j = 0; j < SIZE; j++) {
      sum += Math.abs(Math.trunc(f(f(f(block[i * SIZE + j] - block[(i + 1) * SIZE + j]) * 100) / 255)));
    }
    for (i = 0; i < SIZE; i++) for (j = 0; j < SIZE - 1; j++) {
      sum += Math.abs(Math.trunc(f(f(f(block[i * SIZE + j] - block[i * SIZE + j + 1]) * 100) / 255)));
    }
    return Math.min(Math.floor(sum / 90), 100);
  }

  function toHex(coefficients) {
    var sorted = Array.prototype.slice.call(coefficients).sort(function (x, y) { return x - y; });
    var median = sorted[coefficients.length / 2 - 1];  // the lower middle value, as the reference
    var hex = "";
    for (var byte = 0; byte < 32; byte++) {
      var value = 0;
      for (var t = 0; t < 8; t++) value = (value << 1) | (coefficients[255 - 8 * byte - t] > median ? 1 : 0);
      hex += (value < 16 ? "0" : "") + value.toString(16);
    }
    return hex;
  }

  /** {hash, quality} for RGBA pixels (an ImageData's data), width w and height h. */
  function pdqFromRGBA(rgba, w, h) {
    if (w < MIN_DIM || h < MIN_DIM) return { hash: new Array(65).join("0"), quality: 0 };
    var block = downsample(luma(rgba, w, h), w, h);
    return { hash: toHex(dct16(block)), quality: quality(block) };
  }

  /** Decode a File or Blob locally (EXIF orientation applied, no colour conversion) and hash it. */
  function pdqFromFile(file) {
    return createImageBitmap(file, { imageOrientation: "from-image", colorSpaceConversion: "none",
                                     premultiplyAlpha: "none" })
      .then(function (bitmap) {
        var canvas = document.createElement("canvas");
        canvas.width = bitmap.width; canvas.height = bitmap.height;
        var ctx = canvas.getContext("2d", { willReadFrequently: true });
        ctx.drawImage(bitmap, 0, 0);
        var data = ctx.getImageData(0, 0, bitmap.width, bitmap.height).data;
        var result = pdqFromRGBA(data, bitmap.width, bitmap.height);
        if (bitmap.close) bitmap.close();
        canvas.width = canvas.height = 0;  // let the pixels go at once
        return result;
      });
  }

  global.TakedownPDQ = { pdqFromRGBA: pdqFromRGBA, pdqFromFile: pdqFromFile };

  // The report form: pick images, hash them here, put only the hashes in the hidden field.
  function wire() {
    var picker = document.getElementById("own-images");
    var field = document.getElementById("id_client_hashes");
    var list = document.getElementById("own-images-status");
    if (!picker || !field || !list) return;
    picker.addEventListener("change", function () {
      var files = Array.prototype.slice.call(picker.files || []);
      var hashes = [];
      list.textContent = "";
      field.value = "[]";
      picker.setAttribute("aria-busy", "true");
      var jobs = files.map(function (file, index) {
        var li = document.createElement("li");
        li.textContent = list.dataset.working.replace("%n", index + 1);
        list.appendChild(li);
        return pdqFromFile(file).then(function (result) {
          hashes.push(result.hash);
          li.textContent = list.dataset.done.replace("%n", index + 1);
          li.dataset.hash = result.hash;
        }, function () {
          li.textContent = list.dataset.failed.replace("%n", index + 1);
        });
      });
      Promise.all(jobs).then(function () {
        field.value = JSON.stringify(hashes);
        picker.removeAttribute("aria-busy");
        picker.dataset.hashed = String(hashes.length);
      });
    });
  }
  if (typeof document !== "undefined") {
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", wire); else wire();
  }
})(window);
