"""Parley CTC acoustic model: raw 16 kHz waveform -> character logits.

Front-end inside the graph: 25 ms / 10 ms STFT as a fixed (non-trainable) DFT convolution with a Hann window,
power spectrum, 80-bin mel filterbank, log, fixed global mean/std. Encoder: stride-3 conv subsampling
(30 ms output frames), 2 depthwise-separable conv blocks, N pre-norm transformer layers (LayerNorm only, no
BatchNorm), linear CTC head. Only ops that export to ONNX opset 14.
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
STRIDE = 3


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

    def forward(self, x):  # x [B,S] -> [B,T,mels]
        x = F.pad(x.unsqueeze(1), (N_FFT // 2, N_FFT // 2))
        spec = F.conv1d(x, self.dft, stride=HOP)  # [B, 2*bins, T]
        re, im = spec[:, :self.n_bins], spec[:, self.n_bins:]
        power = (re * re + im * im).transpose(1, 2).contiguous()  # [B, T, bins]
        mel = F.linear(power, self.mel)  # [B, T, mels] (a 2-D matmul: batched matmul is very slow on this torch)
        logmel = torch.log(mel + 1e-6)
        return (logmel - self.mean) / self.std


class SepConv(nn.Module):
    def __init__(self, d, k=15, dropout=0.1):
        super().__init__()
        self.norm = nn.LayerNorm(d)
        self.dw = nn.Conv1d(d, d, k, padding=k // 2, groups=d)
        self.pw = nn.Linear(d, d)
        self.drop = nn.Dropout(dropout)

    def forward(self, x):  # [B,T,d]
        y = self.norm(x)
        y = self.dw(y.transpose(1, 2)).transpose(1, 2).contiguous()
        y = self.pw(F.gelu(y))
        return x + self.drop(y)


class Block(nn.Module):
    def __init__(self, d, heads, ff, dropout=0.1, mix="att", k=15):
        super().__init__()
        self.h = heads
        self.mix = mix
        self.n1 = nn.LayerNorm(d)
        if mix == "att":
            self.qkv = nn.Linear(d, 3 * d)
        else:  # depthwise conv token mixer (conv-only variant)
            self.dw = nn.Conv1d(d, d, k, padding=k // 2, groups=d)
        self.o = nn.Linear(d, d)
        self.n2 = nn.LayerNorm(d)
        self.f1 = nn.Linear(d, ff)
        self.f2 = nn.Linear(ff, d)
        self.drop = nn.Dropout(dropout)

    def forward(self, x, bias=None):  # bias: [B,1,1,T] additive key mask or None
        if self.mix != "att":
            y = self.dw(self.n1(x).transpose(1, 2)).transpose(1, 2).contiguous()
            x = x + self.drop(self.o(F.gelu(y)))
            return x + self.drop(self.f2(self.drop(F.gelu(self.f1(self.n2(x))))))
        B, T, D = x.shape
        q, k, v = self.qkv(self.n1(x)).chunk(3, dim=-1)
        hd = D // self.h
        q = q.reshape(B, T, self.h, hd).transpose(1, 2)
        k = k.reshape(B, T, self.h, hd).transpose(1, 2)
        v = v.reshape(B, T, self.h, hd).transpose(1, 2)
        att = torch.matmul(q, k.transpose(2, 3)) * (1.0 / math.sqrt(hd))
        if bias is not None:
            att = att + bias
        att = self.drop(torch.softmax(att, dim=-1))
        y = torch.matmul(att, v).transpose(1, 2).reshape(B, T, D)
        x = x + self.drop(self.o(y))
        x = x + self.drop(self.f2(self.drop(F.gelu(self.f1(self.n2(x))))))
        return x


class CtcModel(nn.Module):
    def __init__(self, d=256, layers=5, heads=4, ff=1024, n_conv=2, vocab=len(VOCAB), dropout=0.1, conv_layers=0,
                 stride=STRIDE):
        super().__init__()
        self.stride = stride
        self.front = LogMel()
        self.sub = nn.Conv1d(N_MELS, d, 7, stride=stride, padding=3)
        self.sub_norm = nn.LayerNorm(d)
        self.convs = nn.ModuleList([SepConv(d, dropout=dropout) for _ in range(n_conv)])
        self.blocks = nn.ModuleList([Block(d, heads, ff, dropout, mix="conv") for _ in range(conv_layers)] +
                                    [Block(d, heads, ff, dropout) for _ in range(layers)])
        self.out_norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab)
        self.spec_aug = False

    def frames_for(self, samples):  # samples: LongTensor -> output frames
        t = samples // HOP + 1
        return (t - 1) // self.stride + 1

    def forward(self, input_values, lengths=None):
        f = self.front(input_values)  # [B,T,mels]
        if self.training and self.spec_aug:
            f = spec_augment(f)
        x = F.gelu(self.sub(f.transpose(1, 2))).transpose(1, 2).contiguous()
        x = self.sub_norm(x)
        bias = None
        if lengths is not None:
            T = x.shape[1]
            out_len = self.frames_for(lengths)
            mask = torch.arange(T, device=x.device)[None, :] < out_len[:, None]
            x = x * mask.unsqueeze(-1).to(x.dtype)
            bias = torch.zeros(mask.shape, dtype=x.dtype).masked_fill(~mask, -1e4)[:, None, None, :]
        for c in self.convs:
            x = c(x)
        for b in self.blocks:
            x = b(x, bias)
        return self.head(self.out_norm(x))


def spec_augment(f, n_time=2, max_t=12, n_freq=2, max_f=10):
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
