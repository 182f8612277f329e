/**
 * Prompts for multiple-choice questions, as LLaMA-Factory lays them out: a header naming the
 * subject, `n` dev examples as earlier user/assistant turns, then the question, all rendered
 * through the chat template. The model's next token after the rendered prompt is read at the
 * answer letters.
 */
import type { Conversation, Turn } from '@webtune/data';
import { CHOICE_LETTERS, type McqLanguage, type McqQuestion } from './task.js';

/** The header before the first example. `{subject}` is the subject's name from mapping.json. */
export const MCQ_HEADERS: Record<McqLanguage, string> = {
  en: 'The following are multiple choice questions (with answers) about {subject}.\n\n',
  zh: '以下是中国关于{subject}考试的单项选择题，请选出其中的正确答案。\n\n',
};

/** The cue that ends each question, after which the answer letter comes. */
export const MCQ_ANSWER_CUES: Record<McqLanguage, string> = {
  en: '\nAnswer:',
  zh: '\n答案：',
};

/** `question\nA. ..\nB. ..\nC. ..\nD. ..\nAnswer:` (the user side of one example). */
export function formatQuestion(question: McqQuestion, language: McqLanguage): string {
  const lines = CHOICE_LETTERS.map((letter, index) => `\n${letter}. ${question.choices[index]}`);
  return question.question + lines.join('') + MCQ_ANSWER_CUES[language];
}

/**
 * The conversation for one question: `shots` solved examples (user: question, assistant: letter),
 * then the question itself as the last user turn; the header leads the first user turn.
 */
export function mcqConversation(
  question: McqQuestion,
  shots: readonly McqQuestion[],
  subjectName: string,
  language: McqLanguage,
): Conversation {
  const turns: Turn[] = [];
  for (const shot of shots) {
    turns.push({ role: 'user', content: formatQuestion(shot, language) });
    turns.push({ role: 'assistant', content: shot.answer ?? '' });
  }
  turns.push({ role: 'user', content: formatQuestion(question, language) });
  turns[0] = {
    ...turns[0],
    content: MCQ_HEADERS[language].replace('{subject}', subjectName) + turns[0].content,
  };
  return { turns };
}
