// Precompiled header for the LibTorch-using folders (text, nn, tasks, model, train, serve).
#pragma once
#include <torch/torch.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>
