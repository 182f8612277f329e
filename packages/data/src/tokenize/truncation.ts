/**
 * LLaMA-Factory's `cutoff_len` rule for one prompt/response pair and a token budget: if the response
 * takes less than half the budget, the prompt is cut; else if the prompt takes less than half, the
 * response is cut; else the budget is split in proportion to their lengths. Both are cut from the end.
 * Returns the lengths to keep.
 */
export function truncatedLengths(
  promptLength: number,
  responseLength: number,
  budget: number,
): { promptLength: number; responseLength: number } {
  let responseBudget: number;
  if (responseLength * 2 < budget) responseBudget = budget;
  else if (promptLength * 2 < budget) responseBudget = budget - promptLength;
  else responseBudget = Math.floor((budget * responseLength) / (promptLength + responseLength));
  const keptResponse = Math.min(responseBudget, responseLength);
  const keptPrompt = Math.min(Math.max(budget - keptResponse, 0), promptLength);
  return { promptLength: keptPrompt, responseLength: keptResponse };
}
