// The candidate list a sampler chain works on: (token, logit, probability) for
// every token still in play, in llama.cpp's semantics. `data` may move forward
// within the buffer (XTC drops the head), `sorted` says the list is in
// descending logit order, `selected` is the index the final draw picked.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace pyllama {

struct TokenData {
    int32_t id;
    float logit;
    float p;
};

struct Candidates {
    std::vector<TokenData> buf;
    TokenData* data = nullptr;
    size_t size = 0;
    bool sorted = false;
    int64_t selected = -1;

    // Every token of the vocabulary, with its logit, unsorted.
    void reset(const float* logits, int32_t n_vocab);
};

// The largest logit (the first one when the list is sorted).
float max_logit(const Candidates& c);
// Probabilities from the logits (sorting first when asked and not yet sorted).
void softmax(Candidates& c, bool do_sort);
// Leaves the k highest logits, sorted descending (k clamped to size).
void keep_top(Candidates& c, size_t k);
// The k highest of c (descending) into out, without touching c.
void top_into(const Candidates& c, size_t k, std::vector<TokenData>& out);
// Temperature: divide the logits, or keep only the highest when t <= 0.
void apply_temperature(Candidates& c, float t);

}  // namespace pyllama
