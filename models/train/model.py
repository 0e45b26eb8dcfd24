"""Parley CTC acoustic model: raw 16 kHz waveform -> character logits (20 ms frames).

Front-end inside the graph: 25 ms / 10 ms STFT as a fixed (non-trainable) DFT convolution with a Hann window,
power spectrum, 80-bin mel filterbank, log, fixed global mean/std.

Encoder (a U-shaped "time reduction" stack, as in Squeezeformer / Efficient Conformer, to spend the compute
where it pays on two CPU cores):
  stride-2 conv -> 20 ms frames -> `pre` conv blocks
  -> stride-2 depthwise conv -> 40 ms frames -> `mid` blocks (self-attention + depthwise conv + FFN)
  -> 2x upsample + skip connection from the 20 ms stream -> `post` conv blocks -> character CTC head.
A second CTC head predicts espeak-ng IPA phonemes from the middle of the 40 ms stack (upsampled the same
way) during training only: an intermediate, easier target that makes the lower layers phonetic and leaves the
spelling to the upper ones. The export drops it: the shipped graph has only the character head.

LayerNorm only (no BatchNorm: it diverged in CTC training here). Only ops that export to ONNX opset 14, and no
batched matmul outside attention (slow in Debian's torch 1.13).
"""
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

VOCAB = ["<pad>", "|", "'"] + [chr(c) for c in range(ord("a"), ord("z") + 1)] + ["<unk>"]
SR = 16000
N_FFT = 400
HOP = 160
N_MELS = 80
STRIDE = 2  # output frame = HOP * STRIDE samples (20 ms)


def mel_filterbank(n_mels=N_MELS, n_fft=N_FFT, sr=SR, fmin=20.0, fmax=7600.0):
    def hz2mel(f):
        return 2595.0 * np.log10(1.0 + f / 700.0)

    def mel2hz(m):
        return 700.0 * (10 ** (m / 2595.0) - 1.0)

    n_bins = n_fft // 2 + 1
    freqs = np.linspace(0, sr / 2, n_bins)
    mels = np.linspace(hz2mel(fmin), hz2mel(fmax), n_mels + 2)
    hz = mel2hz(mels)
    fb = np.zeros((n_mels, n_bins), dtype=np.float32)
    for i in range(n_mels):
        lo, c, hi = hz[i], hz[i + 1], hz[i + 2]
        up = (freqs - lo) / (c - lo)
        down = (hi - freqs) / (hi - c)
        fb[i] = np.maximum(0, np.minimum(up, down))
    return fb


class LogMel(nn.Module):
    def __init__(self):
        super().__init__()
        n_bins = N_FFT // 2 + 1
        n = np.arange(N_FFT)
        win = 0.5 - 0.5 * np.cos(2 * np.pi * n / N_FFT)
        k = np.arange(n_bins)[:, None]
        cos = np.cos(2 * np.pi * k * n[None, :] / N_FFT) * win
        sin = -np.sin(2 * np.pi * k * n[None, :] / N_FFT) * win
        w = np.concatenate([cos, sin], 0).astype(np.float32)[:, None, :]  # [2*bins, 1, N_FFT]
        self.register_buffer("dft", torch.from_numpy(w))
        self.register_buffer("mel", torch.from_numpy(mel_filterbank()))  # [mels, bins]
        self.register_buffer("mean", torch.zeros(1))
        self.register_buffer("std", torch.ones(1))
        self.n_bins = n_bins

    def forward(self, x):  # x [B,S] -> [B,T,mels], T = S // HOP + 1
        x = F.pad(x.unsqueeze(1), (N_FFT // 2, N_FFT // 2))
        spec = F.conv1d(x, self.dft, stride=HOP)  # [B, 2*bins, T]
        re, im = spec[:, :self.n_bins], spec[:, self.n_bins:]
        power = (re * re + im * im).transpose(1, 2).contiguous()  # [B, T, bins]
        mel = F.linear(power, self.mel)  # [B, T, mels]
        logmel = torch.log(mel + 1e-6)
        return (logmel - self.mean) / self.std


class FeedForward(nn.Module):
    def __init__(self, d, ff, dropout):
        super().__init__()
        self.norm = nn.LayerNorm(d)
        self.f1 = nn.Linear(d, ff)
        self.f2 = nn.Linear(ff, d)
        self.drop = nn.Dropout(dropout)

    def forward(self, x):
        return self.drop(self.f2(self.drop(F.gelu(self.f1(self.norm(x))))))


class ConvMix(nn.Module):
    """Depthwise conv token mixer: LN -> depthwise conv (k) -> GELU -> pointwise linear."""

    def __init__(self, d, k, dropout):
        super().__init__()
        self.norm = nn.LayerNorm(d)
        self.dw = nn.Conv1d(d, d, k, padding=k // 2, groups=d)
        self.pw = nn.Linear(d, d)
        self.drop = nn.Dropout(dropout)

    def forward(self, x, mask=None):
        y = self.norm(x)
        if mask is not None:  # padded frames must not leak into real ones through the convolution
            y = y * mask
        y = self.dw(y.transpose(1, 2)).transpose(1, 2).contiguous()
        return self.drop(self.pw(F.gelu(y)))


class SelfAttention(nn.Module):
    def __init__(self, d, heads, dropout):
        super().__init__()
        self.h = heads
        self.norm = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.o = nn.Linear(d, d)
        self.drop = nn.Dropout(dropout)

    def forward(self, x, bias=None):  # bias: [B,1,1,T] additive key mask or None
        B, T, D = x.shape
        hd = D // self.h
        q, k, v = self.qkv(self.norm(x)).chunk(3, dim=-1)
        q = q.reshape(B, T, self.h, hd).transpose(1, 2)
        k = k.reshape(B, T, self.h, hd).transpose(1, 2)
        v = v.reshape(B, T, self.h, hd).transpose(1, 2)
        att = torch.matmul(q, k.transpose(2, 3)) * (1.0 / math.sqrt(hd))
        if bias is not None:
            att = att + bias
        att = torch.softmax(att, dim=-1)
        y = torch.matmul(att, v).transpose(1, 2).reshape(B, T, D)
        return self.drop(self.o(y))


class ConvBlock(nn.Module):
    def __init__(self, d, ff, k, dropout):
        super().__init__()
        self.mix = ConvMix(d, k, dropout)
        self.ff = FeedForward(d, ff, dropout)

    def forward(self, x, mask=None, bias=None):
        x = x + self.mix(x, mask)
        return x + self.ff(x)


class AttBlock(nn.Module):
    def __init__(self, d, ff, k, heads, dropout):
        super().__init__()
        self.att = SelfAttention(d, heads, dropout)
        self.mix = ConvMix(d, k, dropout)
        self.ff = FeedForward(d, ff, dropout)

    def forward(self, x, mask=None, bias=None):
        x = x + self.att(x, bias)
        x = x + self.mix(x, mask)
        return x + self.ff(x)


def upsample2(x, n):
    """[B,T,D] -> [B,n,D] by repeating every frame twice (n <= 2T)."""
    B, T, D = x.shape
    return x.unsqueeze(2).expand(B, T, 2, D).reshape(B, 2 * T, D)[:, :n]


class CtcModel(nn.Module):
    def __init__(self, d=224, ff=672, heads=4, pre=2, mid=6, post=1, k=15, vocab=len(VOCAB), n_phones=0,
                 dropout=0.0):
        super().__init__()
        self.front = LogMel()
        self.sub = nn.Conv1d(N_MELS, d, 5, stride=2, padding=2)
        self.sub_norm = nn.LayerNorm(d)
        self.pre = nn.ModuleList([ConvBlock(d, ff, k, dropout) for _ in range(pre)])
        self.down = nn.Conv1d(d, d, 3, stride=2, padding=1, groups=d)
        self.down_pw = nn.Linear(d, d)
        self.mid = nn.ModuleList([AttBlock(d, ff, k, heads, dropout) for _ in range(mid)])
        self.up = nn.Linear(d, d)
        self.post = nn.ModuleList([ConvBlock(d, ff, k, dropout) for _ in range(post)])
        self.out_norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab)
        self.phone_at = mid // 2
        if n_phones:
            self.phone_up = nn.Linear(d, d)
            self.phone_norm = nn.LayerNorm(d)
            self.phone_head = nn.Linear(d, n_phones)
        self.n_phones = n_phones
        self.spec_aug = False

    @staticmethod
    def frames_for(samples):  # samples: LongTensor -> 20 ms output frames
        t = samples // HOP + 1
        return (t - 1) // 2 + 1

    def forward(self, input_values, lengths=None, phones=False):
        f = self.front(input_values)  # [B,T,mels]
        if self.training and self.spec_aug:
            f = spec_augment(f)
        x = F.gelu(self.sub(f.transpose(1, 2))).transpose(1, 2).contiguous()
        x = self.sub_norm(x)
        T1 = x.shape[1]
        mask1 = mask2 = bias = None
        if lengths is not None:
            n1 = self.frames_for(lengths)
            n2 = (n1 - 1) // 2 + 1
            T2 = (T1 - 1) // 2 + 1
            mask1 = (torch.arange(T1)[None, :] < n1[:, None]).unsqueeze(-1).to(x.dtype)
            m2 = torch.arange(T2)[None, :] < n2[:, None]
            mask2 = m2.unsqueeze(-1).to(x.dtype)
            bias = torch.zeros(m2.shape, dtype=x.dtype).masked_fill(~m2, -1e4)[:, None, None, :]
            x = x * mask1
        for b in self.pre:
            x = b(x, mask1)
        skip = x
        y = x if mask1 is None else x * mask1
        y = self.down(y.transpose(1, 2)).transpose(1, 2).contiguous()
        y = self.down_pw(F.gelu(y))
        phone_logits = None
        for i, b in enumerate(self.mid):
            if phones and self.n_phones and i == self.phone_at:
                p = skip + self.phone_up(upsample2(y, T1))
                phone_logits = self.phone_head(self.phone_norm(p))
            y = b(y, mask2, bias)
        x = skip + self.up(upsample2(y, T1))
        for b in self.post:
            x = b(x, mask1)
        logits = self.head(self.out_norm(x))
        if phones:
            return logits, phone_logits
        return logits


def spec_augment(f, n_time=2, max_t=10, n_freq=2, max_f=10):
    B, T, M = f.shape
    f = f.clone()
    for b in range(B):
        for _ in range(n_time):
            w = int(torch.randint(0, max_t + 1, (1,)))
            if T > w:
                s = int(torch.randint(0, T - w + 1, (1,)))
                f[b, s:s + w, :] = 0
        for _ in range(n_freq):
            w = int(torch.randint(0, max_f + 1, (1,)))
            s = int(torch.randint(0, M - w + 1, (1,)))
            f[b, :, s:s + w] = 0
    return f
