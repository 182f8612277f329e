/**
 * The plain few-shot layout for models without a chat template (LLaMA-Factory's `fewshot`):
 * each user turn as written, each answer followed by a blank line, no special tokens.
 * `...\nAnswer:B\n\nNext question...\nAnswer:` puts the letter right after the cue, where it is read.
 */
import type { ChatTemplate, Conversation, RenderedConversation, TemplateSegment } from '@webtune/data';

export const fewshotTemplate: ChatTemplate = {
  name: 'fewshot',
  render(conversation: Conversation): RenderedConversation {
    const segments: TemplateSegment[] = [];
    if (conversation.system) segments.push({ kind: 'prompt', text: `${conversation.system}\n\n` });
    conversation.turns.forEach((turn, index) => {
      if (turn.role === 'user' || turn.role === 'observation')
        segments.push({ kind: 'prompt', text: turn.content });
      else segments.push({ kind: 'response', text: `${turn.content}\n\n`, turn: index, trainable: true });
    });
    return { segments, warnings: [] };
  },
};
